import { describe, expect, it } from 'vitest';
import { groupEntries, templateCollection, type Collection, type CollectionEntry, type QAPair } from 'instruct-pt';

const free = (i: number): QAPair => ({ question: `What is fact ${i}?`, answer: `Fact ${i} is true.` });
const mc = (i: number): QAPair => ({ question: `Which colour ${i}?\nOptions:\n- red\n- green\n- blue`, answer: 'green' });
const cot = (i: number): QAPair => ({ question: `How many ${i}?\nLet's think step by step.`, answer: `Count them one by one.\nTherefore, the answer is ${i}` });
const mcCot = (i: number): QAPair => ({ question: `Is ${i} even?\nOptions:\n- yes\n- no\nLet's think step by step.`, answer: `${i} mod 2 is checked.\nTherefore, the answer is ${i % 2 === 0 ? 'yes' : 'no'}` });
const entry = (context: string, pairs: QAPair[], inheritFromPrev = false): CollectionEntry => ({ context, pairs, inheritFromPrev, followedByNext: false });

/** A text with characters templates must not disturb. */
const rawText = (i: number) => `Doc ${i}: line one.\n\n  Indented line, with "quotes", <tags> and $pecial {chars} [${i}].  \n`;

describe('groups (docs/method.md §4)', () => {
  it('starts a group at each non-inheriting entry', () => {
    const c: Collection = [entry('a', [free(1)]), entry('b', [free(2)], true), entry('c', []), entry('d', [free(3)]), entry('e', [free(4)], true)];
    expect(groupEntries(c).map((g) => g.map((e) => e.context))).toEqual([['a', 'b'], ['c'], ['d', 'e']]);
  });
});

describe('templateCollection invariants', () => {
  const collection: Collection = [
    entry(rawText(0), [free(0), mc(0), cot(0)]),
    entry(rawText(1), [mcCot(1), free(1)], true),
    entry(rawText(2), []),
    entry(rawText(3), [free(3)]),
  ];

  it('keeps every raw text verbatim, exactly once, and the entries of one group in one text', () => {
    for (let seed = 0; seed < 300; seed++) {
      const out = templateCollection(collection, seed);
      expect(out).toHaveLength(3);
      expect(out[0]!.text).toContain(rawText(0));
      expect(out[0]!.text).toContain(rawText(1));
      expect(out[0]!.text.indexOf(rawText(0))).toBeLessThan(out[0]!.text.indexOf(rawText(1)));
      expect(out[1]!.text).toBe(rawText(2));
      expect(out[2]!.text).toContain(rawText(3));
      const all = out.map((t) => t.text).join('\u0000');
      for (let i = 0; i < 4; i++) expect(all.split(rawText(i)).length - 1).toBe(1);
    }
  });

  it('is deterministic for a seed and varies across seeds', () => {
    expect(templateCollection(collection, 42)).toEqual(templateCollection(collection, 42));
    const distinct = new Set(Array.from({ length: 50 }, (_, s) => templateCollection(collection, s)[0]!.text));
    expect(distinct.size).toBeGreaterThan(40);
  });

  it('renders every pair’s content: answers, MC options relabelled, CoT rationale and final answer', () => {
    for (let seed = 0; seed < 200; seed++) {
      const t = templateCollection([entry('Ctx.', [free(7), mc(7), cot(7)])], seed)[0]!;
      expect(t.text).toContain('Fact 7 is true.');
      expect(t.text).toContain('What is fact 7?');
      for (const o of ['red', 'green', 'blue']) expect(t.text).toContain(o);
      expect(t.text).toContain('Count them one by one.');
      expect(t.text).toMatch(/\b7\b/);
      expect(t.kinds).toEqual({ free: 1, mc: 1, cot: 1 });
    }
  });

  it('drops malformed CoT pairs, counting them, and keeps the text', () => {
    const bad: QAPair = { question: "Q?\nLet's think step by step.", answer: 'no marker' };
    const t = templateCollection([entry('Ctx.', [bad, free(1)])], 1)[0]!;
    expect(t.droppedPairs).toBe(1);
    expect(t.pairs).toBe(1);
    expect(t.text).toContain('Ctx.');
    expect(t.text).not.toContain('no marker');
    const onlyBad = templateCollection([entry('Alone.', [bad])], 1)[0]!;
    expect(onlyBad.text).toBe('Alone.');
  });
});

describe('variety over 10,000 seeds', () => {
  const multi: Collection = [entry(rawText(9), [free(1), mc(2), cot(3), mcCot(4)])];
  const single: Collection = [entry(rawText(8), [free(1)])];
  const N = 10_000;
  const draws = Array.from({ length: N }, (_, s) => templateCollection(multi, s)[0]!);

  const share = (pred: (t: (typeof draws)[number]) => boolean) => draws.filter(pred).length / N;

  it('draws Classic most often (80–95%) and every layout', () => {
    expect(share((t) => t.layout === 'classic')).toBeGreaterThan(0.8);
    expect(share((t) => t.layout === 'classic')).toBeLessThan(0.95);
    for (const layout of ['dialog', 'numbered', 'inline-few-shot', 'next-turn-dialog']) expect(share((t) => t.layout === layout)).toBeGreaterThan(0.01);
  });

  it('inverts rarely (about 5%)', () => {
    const inv = share((t) => t.inverted);
    expect(inv).toBeGreaterThan(0.035);
    expect(inv).toBeLessThan(0.065);
  });

  it('draws every Q/A family and every option style', () => {
    expect(new Set(draws.map((t) => t.family)).size).toBe(16);
    expect(new Set(draws.map((t) => t.optionStyle)).size).toBe(16);
  });

  it('never draws the multi-pair layouts for an entry with a single pair', () => {
    for (let s = 0; s < 2000; s++) expect(['classic', 'dialog']).toContain(templateCollection(single, s)[0]!.layout);
  });

  it('produces thousands of distinct renderings of the same pairs', () => {
    expect(new Set(draws.map((t) => t.text)).size).toBeGreaterThan(5000);
  });
});
