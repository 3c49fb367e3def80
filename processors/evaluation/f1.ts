import { PY_SPACE } from '../round-feedback/python-whitespace.ts';

/** Token F1 and exact match as the official SQuAD v2.0 evaluation script computes them (docs/method.md §7), exactly. */

// Python's string.punctuation.
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
// Python's re \b on str patterns: word characters are Unicode letters, numbers and the underscore.
const ARTICLES = /(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu;
// Python's str.split() with no argument splits on runs of str.isspace() characters.
const PY_WHITESPACE = new RegExp(`[${PY_SPACE}]+`);

export function normalizeAnswer(s: string): string {
  const lower = s.toLowerCase();
  let noPunc = '';
  for (const ch of lower) if (!PUNCTUATION.has(ch)) noPunc += ch;
  const noArticles = noPunc.replace(ARTICLES, ' ');
  return tokens(noArticles).join(' ');
}

function tokens(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t !== '');
}

function getTokens(s: string): string[] {
  return s ? tokens(normalizeAnswer(s)) : [];
}

function f1Single(gold: string, prediction: string): number {
  const goldToks = getTokens(gold);
  const predToks = getTokens(prediction);
  if (goldToks.length === 0 || predToks.length === 0) return goldToks.length === predToks.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of goldToks) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of predToks) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / predToks.length;
  const recall = same / goldToks.length;
  return (2 * precision * recall) / (precision + recall);
}

/** The script keeps gold answers whose normalised form is non-empty; with none left it scores against ''. */
function golds(gold: string | readonly string[]): string[] {
  const list = typeof gold === 'string' ? [gold] : [...gold];
  const kept = list.filter((g) => normalizeAnswer(g) !== '');
  return kept.length > 0 ? kept : [''];
}

export function f1Score(prediction: string, gold: string | readonly string[]): number {
  return Math.max(...golds(gold).map((g) => f1Single(g, prediction)));
}

export function exactMatch(prediction: string, gold: string | readonly string[]): number {
  const p = normalizeAnswer(prediction);
  return Math.max(...golds(gold).map((g) => (normalizeAnswer(g) === p ? 1 : 0)));
}
