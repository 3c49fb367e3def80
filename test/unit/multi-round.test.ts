import { describe, expect, it } from 'vitest';
import { templateCollection } from '../../processors/pretrain-text/template-collection.ts';
import { finishRound, formatExample, formatSynthesizerInput, planRound, roundRanges, wordsEstimate, type Collection, type LengthBudget, type QAPair } from 'instruct-pt';

const roomy: LengthBudget = { maxModelLen: 1_000_000, maxNewTokens: 400, estimate: wordsEstimate };
const pairsFor = (text: string): QAPair[] => [{ question: `About ${text}?`, answer: `${text}!` }];

/** Runs the batch form with a deterministic fake synthesizer: every text gets one pair unless listed as empty. */
async function runRounds(texts: string[], rounds: number, budget = roomy, noPairs = new Set<string>()) {
  const prompts: string[][] = [];
  let collections: Collection[] = [];
  for (const [r, [s, e]] of roundRanges(texts.length, rounds).entries()) {
    const plan = await planRound(r, texts.slice(s, e), collections, budget);
    prompts.push(plan.plans.map((p) => p.prompt));
    collections = finishRound(plan, plan.texts.map((t) => (noPairs.has(t) ? [] : pairsFor(t))));
  }
  return { prompts, collections };
}

const contexts = (cs: Collection[]) => cs.map((c) => c.map((e) => e.context));

describe('round partition (docs/method.md §3)', () => {
  it('takes [r·B, (r+1)·B) with B = ceil(N/M)', () => {
    expect(roundRanges(10, 3)).toEqual([[0, 4], [4, 8], [8, 10]]);
    expect(roundRanges(9, 3)).toEqual([[0, 3], [3, 6], [6, 9]]);
    expect(roundRanges(2, 3)).toEqual([[0, 1], [1, 2], [2, 2]]);
    expect(roundRanges(0, 2)).toEqual([[0, 0], [0, 0]]);
    expect(() => roundRanges(3, 0)).toThrow();
  });
});

describe('words estimator (the reference)', () => {
  it('counts pieces of a split on single spaces, empty pieces included, × 1.5', () => {
    expect(wordsEstimate('a b')).toBe(3);
    expect(wordsEstimate('a  b')).toBe(4.5);
    expect(wordsEstimate('')).toBe(1.5);
    expect(wordsEstimate('a\nb')).toBe(1.5);
  });
});

describe('multi-round prompts and collections (golden)', () => {
  it('round 0 sends each text zero-shot', async () => {
    const { prompts } = await runRounds(['t0', 't1', 't2'], 1);
    expect(prompts).toEqual([['t0', 't1', 't2'].map(formatSynthesizerInput)]);
  });

  it('N=4, M=2: round 1 text i gets collection i of round 0 as its example, and inherits', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1', 't2', 't3'], 2);
    expect(prompts[1]).toEqual([
      formatExample('t0', pairsFor('t0')) + formatSynthesizerInput('t2'),
      formatExample('t1', pairsFor('t1')) + formatSynthesizerInput('t3'),
    ]);
    expect(collections).toEqual([
      [
        { context: 't0', pairs: pairsFor('t0'), inheritFromPrev: false, followedByNext: true },
        { context: 't2', pairs: pairsFor('t2'), inheritFromPrev: true, followedByNext: false },
      ],
      [
        { context: 't1', pairs: pairsFor('t1'), inheritFromPrev: false, followedByNext: true },
        { context: 't3', pairs: pairsFor('t3'), inheritFromPrev: true, followedByNext: false },
      ],
    ]);
  });

  it('N=6, M=3: the history chains back through inheriting entries', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1', 't2', 't3', 't4', 't5'], 3);
    expect(prompts[2]![0]).toBe(formatExample('t0', pairsFor('t0')) + formatExample('t2', pairsFor('t2')) + formatSynthesizerInput('t4'));
    expect(contexts(collections)).toEqual([
      ['t0', 't2', 't4'],
      ['t1', 't3', 't5'],
    ]);
    expect(collections[0]!.map((e) => e.inheritFromPrev)).toEqual([false, true, true]);
  });

  it('a previous entry without pairs gives a zero-shot prompt and breaks the chain', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1', 't2', 't3'], 2, roomy, new Set(['t0']));
    expect(prompts[1]![0]).toBe(formatSynthesizerInput('t2'));
    expect(collections[0]).toEqual([
      { context: 't0', pairs: [], inheritFromPrev: false, followedByNext: false },
      { context: 't2', pairs: pairsFor('t2'), inheritFromPrev: false, followedByNext: false },
    ]);
  });

  it('new pairs that come back empty do not inherit even when the predecessor was followed', async () => {
    const { collections } = await runRounds(['t0', 't1'], 2, roomy, new Set(['t1']));
    expect(collections[0]).toEqual([
      { context: 't0', pairs: pairsFor('t0'), inheritFromPrev: false, followedByNext: true },
      { context: 't1', pairs: [], inheritFromPrev: false, followedByNext: false },
    ]);
  });

  it('a history longer than max-model-len − max-new-tokens falls back to zero-shot (boundary inclusive)', async () => {
    const candidate = formatExample('t0', pairsFor('t0')) + formatSynthesizerInput('t1');
    const exact = wordsEstimate(candidate);
    const fits = await runRounds(['t0', 't1'], 2, { maxModelLen: exact + 10, maxNewTokens: 10, estimate: wordsEstimate });
    expect(fits.prompts[1]![0]).toBe(candidate);
    const tooLong = await runRounds(['t0', 't1'], 2, { maxModelLen: exact + 9.5, maxNewTokens: 10, estimate: wordsEstimate });
    expect(tooLong.prompts[1]![0]).toBe(formatSynthesizerInput('t1'));
    expect(tooLong.collections[0]!.map((e) => [e.inheritFromPrev, e.followedByNext])).toEqual([
      [false, false],
      [false, false],
    ]);
  });

  it('N=5, M=2: the unpaired collection of round 0 is carried, closed, into the collection of text 0 of round 1, first', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1', 't2', 't3', 't4'], 2);
    expect(prompts[1]).toHaveLength(2);
    // As the reference writes it: one collection, the carried entries first, then text 0's collection.
    expect(contexts(collections)).toEqual([['t2', 't0', 't3'], ['t1', 't4']]);
    expect(collections[0]!.map((e) => [e.inheritFromPrev, e.followedByNext])).toEqual([
      [false, false],
      [false, true],
      [true, false],
    ]);
    // They never connect: templated, the carried text is a pre-training text of its own.
    expect(templateCollection(collections[0]!, 1).map((t) => t.entries)).toEqual([1, 2]);
  });

  it('N=7, M=3: more leftovers than texts (where the reference fails) are all carried, none lost', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1', 't2', 't3', 't4', 't5', 't6'], 3);
    expect(prompts.map((p) => p.length)).toEqual([3, 3, 1]);
    // The first leftover goes with the round's one text, the other one after it, unchanged but closed.
    expect(contexts(collections)).toEqual([['t1', 't4', 't0', 't3', 't6'], ['t2', 't5']]);
    expect(collections[0]![1]!.followedByNext).toBe(false);
    expect(collections.flat().map((e) => e.context).sort()).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
  });

  it('N=2, M=3: an empty last round carries every collection to the output unchanged but closed', async () => {
    const { prompts, collections } = await runRounds(['t0', 't1'], 3);
    expect(prompts).toEqual([[formatSynthesizerInput('t0')], [formatExample('t0', pairsFor('t0')) + formatSynthesizerInput('t1')], []]);
    expect(collections).toEqual([
      [
        { context: 't0', pairs: pairsFor('t0'), inheritFromPrev: false, followedByNext: true },
        { context: 't1', pairs: pairsFor('t1'), inheritFromPrev: true, followedByNext: false },
      ],
    ]);
  });

  it('covers every text exactly once for many N and M', async () => {
    for (let n = 0; n <= 23; n++) {
      for (let m = 1; m <= 5; m++) {
        const texts = Array.from({ length: n }, (_, i) => `t${i}`);
        const { collections } = await runRounds(texts, m);
        expect(collections.flat().map((e) => e.context).sort()).toEqual([...texts].sort());
        for (const c of collections) expect(c[0]!.inheritFromPrev).toBe(false);
      }
    }
  });

  it('does not mutate the previous round’s collections', async () => {
    const prev: Collection[] = [[{ context: 't0', pairs: pairsFor('t0'), inheritFromPrev: false, followedByNext: false }]];
    const snapshot = structuredClone(prev);
    await planRound(1, ['t1'], prev, roomy);
    expect(prev).toEqual(snapshot);
  });
});
