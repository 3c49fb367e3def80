import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { exactMatch, f1Score, normalizeAnswer } from 'instruct-pt';
import { seededRng } from '../../processors/pretrain-text/seeded-random.ts';

// The official SQuAD v2.0 evaluation functions, run by CPython itself, so that lower-casing, \b, string.punctuation
// and str.split() are Python's own rather than our reading of them.
const PYTHON = String.raw`
import collections, json, re, string, sys
def normalize_answer(s):
  def remove_articles(text):
    regex = re.compile(r'\b(a|an|the)\b', re.UNICODE)
    return re.sub(regex, ' ', text)
  def white_space_fix(text):
    return ' '.join(text.split())
  def remove_punc(text):
    exclude = set(string.punctuation)
    return ''.join(ch for ch in text if ch not in exclude)
  def lower(text):
    return text.lower()
  return white_space_fix(remove_articles(remove_punc(lower(s))))
def get_tokens(s):
  if not s: return []
  return normalize_answer(s).split()
def compute_exact(a_gold, a_pred):
  return int(normalize_answer(a_gold) == normalize_answer(a_pred))
def compute_f1(a_gold, a_pred):
  gold_toks = get_tokens(a_gold)
  pred_toks = get_tokens(a_pred)
  common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
  num_same = sum(common.values())
  if len(gold_toks) == 0 or len(pred_toks) == 0:
    return int(gold_toks == pred_toks)
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(pred_toks)
  recall = 1.0 * num_same / len(gold_toks)
  return (2 * precision * recall) / (precision + recall)
cases = json.load(sys.stdin)
out = []
for pred, golds in cases:
  golds = [g for g in golds if normalize_answer(g)] or ['']
  out.append([normalize_answer(pred), max(compute_f1(g, pred) for g in golds), max(compute_exact(g, pred) for g in golds)])
print(json.dumps(out))
`;

const ALPHABET = ['a', 'an', 'the', 'The', 'AN', 'cat', 'Cat', 'x', '1', '_', 'é', 'Éte', 'ΣΑΣ', 'İ', 'ß', 'ﬁ', '٣', '²', 'ǅ', '中文', ' ', '  ', '\t', '\n', '\x1c', '\x85', '\xa0', '\u2003', '\u200b', '\ufeff', '.', ',', "'", '-', '—', '«', '»', '!', '?', '(', ')', '$', 'the-', '-a-', 'a.b', "don't"];

function randomText(rng: ReturnType<typeof seededRng>): string {
  let s = '';
  const n = rng.int(12);
  for (let i = 0; i < n; i++) s += rng.pick(ALPHABET);
  return s;
}

describe('F1 and exact match agree with the SQuAD v2.0 script run by Python', () => {
  it('on 3,000 random strings of tricky characters', () => {
    const rng = seededRng('f1-parity');
    const cases: [string, string[]][] = Array.from({ length: 3000 }, () => [randomText(rng), Array.from({ length: 1 + rng.int(3) }, () => randomText(rng))]);
    const py = spawnSync('python3', ['-c', PYTHON], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(py.status, py.stderr).toBe(0);
    const expected = JSON.parse(py.stdout) as [string, number, number][];
    for (let i = 0; i < cases.length; i++) {
      const [pred, golds] = cases[i]!;
      const [norm, f1, em] = expected[i]!;
      expect(normalizeAnswer(pred), JSON.stringify(pred)).toBe(norm);
      expect(f1Score(pred, golds)).toBeCloseTo(f1, 12);
      expect(exactMatch(pred, golds)).toBe(em);
    }
  });
});
