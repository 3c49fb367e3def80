import { describe, expect, it } from 'vitest';
import { isSampled, pairSample, SAMPLE_CONTEXT_CHARS, SAMPLE_EVERY, SAMPLE_HEAD } from '../../processors/round-feedback/pair-sample.ts';
import { classifyPair } from '../../processors/round-feedback/pair-kinds.ts';
import { mixProgressRow } from '../../ops/server/mix-progress-follower.ts';

describe('the sample browser’s samples', () => {
  it('takes every round’s first texts, then about one in SAMPLE_EVERY by id, the same on every replay', () => {
    for (let p = 0; p < SAMPLE_HEAD; p++) expect(isSampled(`t${p}`, p)).toBe(true);
    const ids = Array.from({ length: 16_000 }, (_, i) => `doc-${i}`);
    const taken = ids.filter((id) => isSampled(id, 1_000));
    expect(taken.length / ids.length).toBeGreaterThan(0.8 / SAMPLE_EVERY);
    expect(taken.length / ids.length).toBeLessThan(1.2 / SAMPLE_EVERY);
    expect(ids.filter((id) => isSampled(id, 1_000))).toEqual(taken);
  });

  it('carries the pairs with their kinds and the start of the context, cut whole at a surrogate pair', () => {
    const pairs = [classifyPair({ question: 'What is it?', answer: 'A bridge.' })];
    expect(pairSample('t', 0, 'A text.', [])).toBeNull();
    expect(pairSample('t', 0, 'A text.', pairs)).toEqual({ context: 'A text.', contextChars: 7, pairs: [{ question: 'What is it?', answer: 'A bridge.', kind: 'free' }] });
    const long = 'x'.repeat(SAMPLE_CONTEXT_CHARS - 1) + '😀' + 'tail';
    const s = pairSample('t', 0, long, pairs)!;
    expect(s.contextChars).toBe(long.length);
    expect(s.context).toBe('x'.repeat(SAMPLE_CONTEXT_CHARS - 1));
  });
});

describe('the mix share’s rows', () => {
  it('are the mixer’s counts at the time it wrote them; records without a time give none', () => {
    const state = { runId: 'r', emittedTokens: [900, 100], generalCursor: 3, generalLeft: false, mixIndex: 41, updatedAt: 1_700_000_000_500 };
    expect(mixProgressRow(state)).toEqual({ run_id: 'r', mix_index: 41, time_ms: 1_700_000_000_500, time: 1_700_000_000, domain_tokens: 900, general_tokens: 100 });
    expect(mixProgressRow({ ...state, updatedAt: 0 })).toBeUndefined();
  });
});
