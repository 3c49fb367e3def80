import type { LengthEstimator } from '../templating/length-estimators.ts';
import { formatPairs, formatSynthesizerInput, type QAPair } from '../templating/synthesizer-format.ts';

/** One example of a context-based task dataset: a context and its question–answer pairs (docs/method.md §6). */
export interface TuningExample {
  dataset: string;
  context: string;
  pairs: QAPair[];
}

/** A part of a tuning sequence: trained on (the pairs, their end of sequence) or not (the synthesizer input). */
export interface Segment {
  text: string;
  train: boolean;
}

/** One training sequence: few-shot examples of one dataset, concatenated; its text is its segments' concatenation. */
export interface TuningSequence {
  dataset: string;
  segments: Segment[];
}

/**
 * An example as the synthesizer sees it in a few-shot prompt (§1), in two segments: its synthesizer input, which the
 * loss skips, and its pairs block with the end of sequence, which is trained.
 */
export function exampleSegments(e: TuningExample): [Segment, Segment] {
  return [
    { text: formatSynthesizerInput(e.context), train: false },
    { text: `${formatPairs(e.pairs)}</s>`, train: true },
  ];
}

/**
 * Per dataset, the examples kept (at most `max`, those with the most pairs first, ties in input order) in that order,
 * and how many were left out. Datasets in the order they first appear.
 */
export function keepPerDataset(examples: readonly TuningExample[], max: number): { kept: Map<string, TuningExample[]>; dropped: Map<string, number> } {
  const byDataset = new Map<string, TuningExample[]>();
  for (const e of examples) {
    const list = byDataset.get(e.dataset);
    if (list) list.push(e);
    else byDataset.set(e.dataset, [e]);
  }
  const kept = new Map<string, TuningExample[]>();
  const dropped = new Map<string, number>();
  for (const [dataset, list] of byDataset) {
    // Array.prototype.sort is stable: equal pair counts keep their input order.
    const ranked = [...list].sort((a, b) => b.pairs.length - a.pairs.length);
    kept.set(dataset, ranked.slice(0, max));
    dropped.set(dataset, Math.max(0, ranked.length - max));
  }
  return { kept, dropped };
}

/**
 * One dataset's examples, in order, packed greedily into sequences whose whole text's estimated length stays within
 * `maxLen`: the example that would take a sequence past it starts the next one, and an example longer than `maxLen`
 * on its own is a sequence by itself (docs/method.md §6).
 */
export async function packSequences(dataset: string, examples: readonly TuningExample[], maxLen: number, estimate: LengthEstimator, onExample?: () => void): Promise<TuningSequence[]> {
  const out: TuningSequence[] = [];
  let segments: Segment[] = [];
  let text = '';
  for (const e of examples) {
    onExample?.();
    const parts = exampleSegments(e);
    const own = parts[0].text + parts[1].text;
    if (segments.length > 0 && (await estimate(text + own)) <= maxLen) {
      segments.push(...parts);
      text += own;
      continue;
    }
    if (segments.length > 0) out.push({ dataset, segments });
    segments = [...parts];
    text = own;
    if ((await estimate(own)) > maxLen) {
      out.push({ dataset, segments });
      segments = [];
      text = '';
    }
  }
  if (segments.length > 0) out.push({ dataset, segments });
  return out;
}
