import type { QAPair } from '../templating/synthesizer-format.ts';
import { classifyPair, type TypedPair } from './pair-kinds.ts';
import { PY_SPACE } from './python-whitespace.ts';

/**
 * Parses the synthesizer's continuation into pairs (SPEC §2), exactly: split on `</END>` and drop an unfinished
 * last piece; keep pieces with exactly one `<ANS>`, a question part starting with `<QUE>` and a non-empty answer;
 * remove every `<QUE>` from the question; keep the first pair of each lower-cased question.
 */
export function parseSynthesizerOutput(text: string): TypedPair[] {
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

// Python's str.strip() with no argument.
const STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

export function pyStrip(s: string): string {
  return s.replace(STRIP, '');
}
