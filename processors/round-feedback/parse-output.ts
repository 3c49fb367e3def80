import type { QAPair } from '../templating/synthesizer-format.ts';
import { classifyPair, type TypedPair } from './pair-kinds.ts';
import { isPySpace } from './python-whitespace.ts';

/**
 * Parses the synthesizer's continuation into pairs (docs/method.md §2), exactly: split on `</END>` and drop an unfinished
 * last piece; keep pieces with exactly one `<ANS>`, a question part starting with `<QUE>` and a non-empty answer;
 * remove every `<QUE>` from the question; keep the first pair of each lower-cased question. `counts.pieces` (when
 * given) is increased by the pieces that parse, before that de-duplication.
 */
export function parseSynthesizerOutput(text: string, counts?: { pieces: number }): TypedPair[] {
  const out: TypedPair[] = [];
  const seen = new Set<string>();
  // The pieces of text.split('</END>') but the last (unfinished, or empty after a final </END>), found by index.
  for (let start = 0, end = text.indexOf(END); end >= 0; start = end + END.length, end = text.indexOf(END, start)) {
    // Exactly one <ANS> in the piece.
    const ans = text.indexOf(ANS, start);
    if (ans < 0 || ans >= end) continue;
    const again = text.indexOf(ANS, ans + ANS.length);
    if (again >= 0 && again < end) continue;
    const questionPart = pyStrip(text.slice(start, ans));
    const answer = pyStrip(text.slice(ans + ANS.length, end));
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

const END = '</END>';
const ANS = '<ANS>';

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
