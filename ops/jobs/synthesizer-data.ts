import { JsonlWriter } from '../../connectors/files/jsonl-writer.ts';
import { readTuningExamples, type BadRecord, type FieldMap } from '../../connectors/files/tuning-records.ts';
import { keepPerDataset, packSequences } from '../../processors/synthesizer-data/tuning-sequences.ts';
import type { LengthEstimator } from '../../processors/templating/length-estimators.ts';

export interface SynthesizerDataOptions {
  inputs: string[];
  output: string;
  /** Examples kept per dataset (default 10,000). */
  maxPerDataset: number;
  /** The longest sequence, by `estimate` (default 4096). */
  maxLen: number;
  estimate: LengthEstimator;
  map?: FieldMap;
  /** Examples packed of the examples kept, as packing goes (the token estimate makes it the long part). */
  onProgress?: (packed: number, total: number) => void;
}

export interface DatasetSummary {
  dataset: string;
  examples: number;
  kept: number;
  dropped: number;
  sequences: number;
  pairs: number;
}

export interface SynthesizerDataSummary {
  datasets: DatasetSummary[];
  examples: number;
  kept: number;
  dropped: number;
  sequences: number;
  pairs: number;
  badRecords: number;
  /** The first 20 bad records, by file and line. */
  bad: BadRecord[];
}

/**
 * The synthesizer's tuning data (docs/method.md §6): context-based task examples read from files, at most
 * `maxPerDataset` per dataset (the most pairs first), packed per dataset into sequences of few-shot examples, each
 * example's synthesizer input untrained and its pairs trained. One JSON line per sequence:
 * {"dataset", "segments": [{"text", "train"}, …]}.
 */
export async function buildSynthesizerData(opts: SynthesizerDataOptions, onBad: (b: BadRecord) => void = () => undefined): Promise<SynthesizerDataSummary> {
  const bad: BadRecord[] = [];
  let badRecords = 0;
  const examples = await readTuningExamples(opts.inputs, opts.map, (b) => {
    badRecords++;
    if (bad.length < 20) bad.push(b);
    onBad(b);
  });
  const { kept, dropped } = keepPerDataset(examples, opts.maxPerDataset);
  const out = new JsonlWriter(opts.output);
  const datasets: DatasetSummary[] = [];
  const total = [...kept.values()].reduce((n, l) => n + l.length, 0);
  let packed = 0;
  const onExample = opts.onProgress && (() => opts.onProgress!(++packed, total));
  try {
    for (const [dataset, list] of kept) {
      const sequences = await packSequences(dataset, list, opts.maxLen, opts.estimate, onExample);
      for (const s of sequences) await out.write(s);
      const d = dropped.get(dataset) ?? 0;
      datasets.push({ dataset, examples: list.length + d, kept: list.length, dropped: d, sequences: sequences.length, pairs: list.reduce((n, e) => n + e.pairs.length, 0) });
    }
  } finally {
    await out.close();
  }
  const sum = (k: 'examples' | 'kept' | 'dropped' | 'sequences' | 'pairs') => datasets.reduce((n, d) => n + d[k], 0);
  return { datasets, examples: sum('examples'), kept: sum('kept'), dropped: sum('dropped'), sequences: sum('sequences'), pairs: sum('pairs'), badRecords, bad };
}
