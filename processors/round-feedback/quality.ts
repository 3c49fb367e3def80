import type { TypedPair } from './pair-kinds.ts';
import { pyStrip } from './parse-output.ts';

/** Cheap per-record quality signals (SPEC §7): kinds mix, lengths, duplicates and grounding of the answers in the text. */
export interface PairQuality {
  pairs: number;
  kindFree: number;
  kindMc: number;
  kindCot: number;
  kindMcCot: number;
  questionChars: number;
  answerChars: number;
  /** Share of the answers' words (lower-cased runs of letters and digits) that occur in the text (1 when answers have none). */
  grounding: number;
}

export function pairQuality(text: string, pairs: readonly TypedPair[]): PairQuality {
  const q: PairQuality = { pairs: pairs.length, kindFree: 0, kindMc: 0, kindCot: 0, kindMcCot: 0, questionChars: 0, answerChars: 0, grounding: 0 };
  const vocabulary = pairs.length === 0 ? new Set<string>() : new Set(words(text));
  let tokens = 0;
  let found = 0;
  for (const p of pairs) {
    if (p.kind === 'free') q.kindFree++;
    else if (p.kind === 'mc') q.kindMc++;
    else if (p.kind === 'cot') q.kindCot++;
    else if (p.kind === 'mc-cot') q.kindMcCot++;
    q.questionChars += p.question.length;
    q.answerChars += p.answer.length;
    for (const t of words(p.answer)) {
      tokens++;
      if (vocabulary.has(t)) found++;
    }
  }
  q.grounding = pairs.length === 0 ? 0 : tokens === 0 ? 1 : found / tokens;
  return q;
}

const WORD_SEPARATORS = /[^\p{L}\p{N}]+/u;

function words(s: string): string[] {
  return s.toLowerCase().split(WORD_SEPARATORS).filter((w) => w !== '');
}

/** Pieces that parse as pairs before the lower-cased de-duplication (SPEC §2 step 3): duplicates = pieces − pairs. */
export function countPairPieces(output: string): number {
  let pieces = output.split('</END>');
  if (!output.endsWith('</END>')) pieces = pieces.slice(0, -1);
  let n = 0;
  for (const piece of pieces) {
    const parts = piece.split('<ANS>');
    if (parts.length === 2 && pyStrip(parts[0]!).startsWith('<QUE>') && pyStrip(parts[1]!) !== '') n++;
  }
  return n;
}
