import { hashString, mix32 } from '../pretrain-text/seeded-random.ts';
import type { TypedPair } from './pair-kinds.ts';
import type { MetricEvent } from '../pipeline/avro-records.generated.ts';

export type PairSample = NonNullable<MetricEvent['sample']>;

/** Every round's first texts are sampled, so a small run shows pairs at once; after them one text in SAMPLE_EVERY. */
export const SAMPLE_HEAD = 8;
export const SAMPLE_EVERY = 16;
/** The context kept beside the pairs: enough to read what they ask about, without copying the corpus into ClickHouse. */
export const SAMPLE_CONTEXT_CHARS = 2000;

/**
 * Whether a synthesized text's pairs go to the dashboard's sample browser: decided by the text's place in its round
 * and a hash of its id, so a replay samples the same texts (and their rows replace, not add).
 */
export function isSampled(id: string, position: number): boolean {
  return position < SAMPLE_HEAD || isSampledById(id);
}

/** The part of the sample drawn by a hash of the id alone (one text in SAMPLE_EVERY): a uniform subset of a round's texts. */
export function isSampledById(id: string): boolean {
  return mix32(hashString(id)) % SAMPLE_EVERY === 0;
}

/** The sample a metric event carries: null for texts not sampled and for those without pairs. */
export function pairSample(id: string, position: number, text: string, pairs: readonly TypedPair[]): PairSample | null {
  if (pairs.length === 0 || !isSampled(id, position)) return null;
  return {
    context: head(text, SAMPLE_CONTEXT_CHARS),
    contextChars: text.length,
    pairs: pairs.map((p) => ({ question: p.question, answer: p.answer, kind: p.kind })),
  };
}

/** The first n UTF-16 units of s, one fewer where the cut would split a surrogate pair. */
function head(s: string, n: number): string {
  if (s.length <= n) return s;
  const last = s.charCodeAt(n - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
}
