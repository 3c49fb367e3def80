import type { TypedPair } from './pair-kinds.ts';

/** Cheap per-record quality signals (docs/method.md §7): kinds mix, lengths, duplicates and grounding of the answers in the text. */
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
  const lower = pairs.length === 0 ? '' : text.toLowerCase();
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
      if (occursAsWord(lower, t)) found++;
    }
  }
  q.grounding = pairs.length === 0 ? 0 : tokens === 0 ? 1 : found / tokens;
  return q;
}

const WORD_SEPARATORS = /[^\p{L}\p{N}]+/u;

/** Lower-cased runs of letters and digits: the words grounding compares. */
export function words(s: string): string[] {
  return s.toLowerCase().split(WORD_SEPARATORS).filter((w) => w !== '');
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/** The code point that ends just before index i (a surrogate pair read whole). */
function codePointBefore(s: string, i: number): number {
  const c = s.charCodeAt(i - 1);
  if (c >= 0xdc00 && c <= 0xdfff && i >= 2) {
    const h = s.charCodeAt(i - 2);
    if (h >= 0xd800 && h <= 0xdbff) return (h - 0xd800) * 0x400 + (c - 0xdc00) + 0x10000;
  }
  return c;
}

const isWordCodePoint = (cp: number) => (cp < 0x80 ? (cp >= 48 && cp <= 57) || (cp >= 97 && cp <= 122) || (cp >= 65 && cp <= 90) : WORD_CHAR.test(String.fromCodePoint(cp)));

/**
 * Whether word w (a run of letters and digits) is one of words(text), given text lower-cased: an occurrence whose
 * neighbours are not letters or digits is a whole run. Searching for the answers' few words costs far less than
 * splitting the whole text into a set.
 */
export function occursAsWord(lowerText: string, w: string): boolean {
  for (let i = lowerText.indexOf(w); i !== -1; i = lowerText.indexOf(w, i + 1)) {
    const end = i + w.length;
    if (i > 0 && isWordCodePoint(codePointBefore(lowerText, i))) continue;
    if (end < lowerText.length && isWordCodePoint(lowerText.codePointAt(end)!)) continue;
    return true;
  }
  return false;
}
