import { localTokenizerEstimator } from '../../connectors/llm/token-estimators.ts';
import { parseFieldMap } from '../../connectors/files/tuning-records.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import { buildSynthesizerData } from '../jobs/synthesizer-data.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';
import { ProgressLine } from '../jobs/progress-line.ts';

/** `ipt synthesizer data …`: the synthesizer's tuning data from context-based task datasets. */
export async function synthesizerCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseFlags('synthesizer', argv, FLAGS.synthesizer);
  if (positionals[0] !== 'data') throw new UsageError(usageOf('synthesizer'));
  const inputs = values.input;
  if (inputs.length === 0 || !values.output) throw new UsageError(`synthesizer data: --input and --output are required\n${usageOf('synthesizer')}`);
  const maxPerDataset = values['max-per-dataset'];
  const maxLen = values['max-len'];
  // As in augment, tokens is the better estimate; it needs the synthesizer's tokenizer, and words is the reference's.
  const lengthEstimate = values['length-estimate'] ?? (values.tokenizer ? 'tokens' : 'words');
  if (lengthEstimate === 'tokens' && !values.tokenizer) throw new UsageError('synthesizer data: --length-estimate tokens needs --tokenizer FILE (the synthesizer’s tokenizer.json)');
  let map;
  try {
    map = values.map === undefined ? undefined : parseFieldMap(values.map);
  } catch (err) {
    throw new UsageError(`synthesizer data: ${(err as Error).message}`);
  }
  const estimate = lengthEstimate === 'tokens' ? localTokenizerEstimator(values.tokenizer!) : wordsEstimate;
  // A progress line a second while packing, where there are enough examples to wait for.
  let progress: ProgressLine | undefined;
  const onProgress = (packed: number, total: number) => {
    if (total < 10_000) return;
    progress ??= new ProgressLine(total, 'examples');
    const line = progress.update(packed);
    if (line !== undefined) process.stderr.write(`synthesizer data: packing ${line}\n`);
  };
  const s = await buildSynthesizerData({ inputs, output: values.output, maxPerDataset, maxLen, estimate, map, onProgress }, (b) => process.stderr.write(`synthesizer data: ${b.where}: ${b.reason}\n`));
  if (values.json) console.log(JSON.stringify(s));
  else {
    for (const d of s.datasets) console.log(`${d.dataset}: ${d.examples} examples, ${d.kept} kept, ${d.dropped} dropped, ${d.sequences} sequences, ${d.pairs} pairs`);
    console.log(`synthesizer data: ${s.datasets.length} datasets, ${s.examples} examples (${s.kept} kept, ${s.dropped} dropped), ${s.sequences} sequences, ${s.pairs} pairs, ${s.badRecords} bad records → ${values.output}`);
  }
  return s.badRecords > 0 && !values['allow-rejects'] ? 1 : 0;
}
