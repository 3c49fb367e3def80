import type { QAPair } from '../templating/synthesizer-format.ts';
import { classifyPair, type TypedPair } from './pair-kinds.ts';
import { isPySpace } from './python-whitespace.ts';

/**
 * Parses the synthesizer's continuation into pairs (SPEC §2), exactly: split on `</END>` and drop an unfinished
 * last piece; keep pieces with exactly one `<ANS>`, a question part starting with `<QUE>` and a non-empty answer;
 * remove every `<QUE>` from the question; keep the first pair of each lower-cased question. `counts.pieces` (when
 * given) is increased by the pieces that parse, before that de-duplication.
 */
export function parseSynthesizerOutput(text: string, counts?: { pieces: number }): TypedPair[] {
  let pieces = text.split('</END>');
  if (!text.endsWith('</END>')) pieces = pieces.slice(0, -1);
  const out: TypedPair[] = [];
  const seen = new Set<string>();
  for (const piece of pieces) {
    const parts = piece.split('<ANS>');
    if (parts.length !== 2) continue;
    const questionPart = pyStrip(parts[0]!);
    const answer = pyStrip(parts[1]!);
    if (!questionPart.startsWith('<QUE>')) continue;
    if (answer === '') continue;
    // Pieces that parse, before de-duplication (duplicates = pieces − pairs).
    if (counts) counts.pieces++;
    const question = pyStrip(questionPart.replaceAll('<QUE>', ''));
    const key = question.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(classifyPair({ question, answer }));
  }
  return out;
}

export function plainPairs(pairs: readonly QAPair[]): QAPair[] {
  return pairs.map((p) => ({ question: p.question, answer: p.answer }));
}

/** Python's str.strip() with no argument. A scan from both ends: a regular expression's `[…]+$` retries at every inner space. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPySpace(s.charCodeAt(start))) start++;
  while (end > start && isPySpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}
