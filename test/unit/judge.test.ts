import { describe, expect, it } from 'vitest';
import { JUDGE_CATEGORIES, JUDGE_MAX_TEXT_CHARS, judgeGrammarGbnf, judgeJsonSchema, judgePrompt, parseJudgement, Reservoir, wilsonInterval } from '../../processors/evaluation/judge.ts';

describe('the LLM judge’s method', () => {
  it('asks the paper’s two questions and the category, about the text and the pair', () => {
    const prompt = judgePrompt({ context: 'Paris is the capital of France.', question: 'What is the capital of France?', answer: 'Paris' });
    expect(prompt).toContain('### Text\nParis is the capital of France.\n');
    expect(prompt).toContain('### Instruction\nWhat is the capital of France?\n');
    expect(prompt).toContain('### Response\nParis\n');
    expect(prompt).toMatch(/relevant: is the instruction relevant to the text/);
    expect(prompt).toMatch(/accurate: is the response accurate/);
    for (const c of JUDGE_CATEGORIES) expect(prompt).toContain(c);
    expect(prompt.endsWith('### Answer\n')).toBe(true);
    // A text past the limit is cut and marked; so is one known to be only its start.
    const long = judgePrompt({ context: 'x'.repeat(JUDGE_MAX_TEXT_CHARS + 10), question: 'Q?', answer: 'A.' });
    expect(long).toContain(`### Text (only its beginning is shown)\n${'x'.repeat(JUDGE_MAX_TEXT_CHARS)}\n\n### Instruction`);
    expect(judgePrompt({ context: 'Start.', question: 'Q?', answer: 'A.', partial: true })).toContain('### Text (only its beginning is shown)\nStart.\n');
  });

  it('guides the answer to exactly the judgement’s JSON (grammar and schema name every category)', () => {
    const g = judgeGrammarGbnf();
    expect(g).toMatch(/^root ::= "\{" ws "\\"relevant\\""/);
    for (const c of JUDGE_CATEGORIES) expect(g).toContain(`"\\"${c}\\""`);
    expect(judgeJsonSchema()).toMatchObject({ required: ['relevant', 'accurate', 'category'], properties: { category: { enum: [...JUDGE_CATEGORIES] } } });
  });

  it('reads the answer strictly, saying why one cannot be read', () => {
    expect(parseJudgement('{"relevant": true, "accurate": false, "category": "reading comprehension"}')).toEqual({ relevant: true, accurate: false, category: 'reading comprehension' });
    expect(parseJudgement(' sure: {"relevant":false,"accurate":true,"category":"code"} done')).toEqual({ relevant: false, accurate: true, category: 'code' });
    expect(parseJudgement('yes')).toEqual({ error: 'no JSON object in the answer' });
    expect(parseJudgement('{"relevant": "yes", "accurate": true, "category": "code"}')).toEqual({ error: '"relevant" is not true or false' });
    expect(parseJudgement('{"relevant": true, "accurate": 1, "category": "code"}')).toEqual({ error: '"accurate" is not true or false' });
    expect(parseJudgement('{"relevant": true, "accurate": true, "category": "poetry"}')).toEqual({ error: '"category" "poetry" is not one of the categories' });
    expect((parseJudgement('{"relevant": tru}') as { error: string }).error).toMatch(/does not parse/);
  });

  it('gives rates with 95% Wilson intervals', () => {
    const r = wilsonInterval(8, 10);
    expect(r.rate).toBe(0.8);
    expect(r.low).toBeCloseTo(0.4902, 4);
    expect(r.high).toBeCloseTo(0.9433, 4);
    expect(wilsonInterval(0, 20).low).toBe(0);
    expect(wilsonInterval(0, 20).high).toBeCloseTo(0.1611, 4);
    expect(wilsonInterval(500, 500).high).toBe(1);
    // The ends are exact for every n, not a rounding error away.
    for (let n = 1; n <= 60; n++) expect([wilsonInterval(0, n).low, wilsonInterval(n, n).high]).toEqual([0, 1]);
    expect(wilsonInterval(0, 0)).toEqual({ successes: 0, n: 0, rate: 0, low: 0, high: 1 });
  });

  it('samples a stream uniformly and the same way for the same seed', () => {
    const stream = Array.from({ length: 100 }, (_, i) => i);
    const take = (seed: number) => {
      const r = new Reservoir<number>(10, seed);
      for (const x of stream) r.offer(x);
      return r;
    };
    expect(take(7).items).toEqual(take(7).items);
    expect(take(7).seen).toBe(100);
    const counts = new Array<number>(100).fill(0);
    const trials = 4000;
    for (let s = 0; s < trials; s++) for (const x of take(s).items) counts[x]!++;
    // Each item is kept with probability 10/100: 400 of 4,000 trials, binomial sd ≈ 19.
    for (const c of counts) expect(Math.abs(c - 400)).toBeLessThan(100);
    const short = new Reservoir<number>(10, 1);
    for (const x of [1, 2, 3]) short.offer(x);
    expect(short.items).toEqual([1, 2, 3]);
    expect(() => new Reservoir(0, 1)).toThrow(/whole number/);
  });
});
