import { describe, expect, it } from 'vitest';
import { MixSampler, mixIterables } from 'instruct-pt';

describe('mix-ratio sampler (docs/method.md §5)', () => {
  it('emits from the largest deficit, ties by source order', () => {
    const s = new MixSampler([
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ]);
    const order: number[] = [];
    for (let i = 0; i < 6; i++) {
      const k = s.next();
      order.push(k);
      s.record(k, 10);
    }
    expect(order).toEqual([0, 1, 0, 1, 0, 1]);
  });

  it('keeps the realised ratio within one record of the target at every prefix', () => {
    const weights = [0.5, 0.3, 0.2];
    const lengths = [[120, 80, 300, 50], [40, 200, 90], [500, 20, 60, 70, 10]];
    const maxLen = Math.max(...lengths.flat());
    const sampler = new MixSampler(weights.map((w, i) => ({ name: `s${i}`, weight: w })));
    for (let step = 0; step < 20_000; step++) {
      const k = sampler.next();
      const len = lengths[k]![step % lengths[k]!.length]!;
      sampler.record(k, len);
      for (let i = 0; i < 3; i++) expect(Math.abs(sampler.emitted[i]! - weights[i]! * sampler.total)).toBeLessThanOrEqual(maxLen);
    }
    const ratios = sampler.realisedRatios();
    for (let i = 0; i < 3; i++) expect(ratios[i]).toBeCloseTo(weights[i]!, 2);
  });

  it('normalises weights and validates them', () => {
    expect(new MixSampler([{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }]).weights).toEqual([0.75, 0.25]);
    expect(() => new MixSampler([])).toThrow();
    expect(() => new MixSampler([{ name: 'a', weight: -1 }])).toThrow(/weight/);
    expect(() => new MixSampler([{ name: 'a', weight: 0 }])).toThrow(/sum to 0/);
  });

  it('lets an exhausted source leave the mix; the rest go on', () => {
    const out = [...mixIterables([
      { name: 'short', weight: 1, items: () => ['s1', 's2'] },
      { name: 'long', weight: 1, items: () => ['l1', 'l2', 'l3', 'l4', 'l5'] },
    ], () => 1)].map((x) => x.item);
    expect(out).toEqual(['s1', 'l1', 's2', 'l2', 'l3', 'l4', 'l5']);
  });

  it('restarts a source configured to restart, ending when the finite sources are done', () => {
    const out = [...mixIterables([
      { name: 'general', weight: 1, items: () => ['g1', 'g2'], onExhausted: 'restart' as const },
      { name: 'domain', weight: 1, items: () => ['d1', 'd2', 'd3'] },
    ], () => 1)].map((x) => x.item);
    // The domain source is found exhausted on the step after d3, so one more general record precedes the end.
    expect(out).toEqual(['g1', 'd1', 'g2', 'd2', 'g1', 'd3', 'g2']);
  });

  it('is deterministic', () => {
    const run = () => [...mixIterables([
      { name: 'a', weight: 0.7, items: () => Array.from({ length: 50 }, (_, i) => i * 7 % 13 + 1) },
      { name: 'b', weight: 0.3, items: () => Array.from({ length: 50 }, (_, i) => i * 5 % 11 + 1) },
    ], (x) => x)];
    expect(run()).toEqual(run());
  });
});
