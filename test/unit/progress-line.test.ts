import { describe, expect, it } from 'vitest';
import { duration, ProgressLine } from '../../ops/jobs/progress-line.ts';

describe('a long job’s progress line', () => {
  it('prints done of total with the rate and the time left, at most once a second, and always the last', () => {
    let t = 0;
    const p = new ProgressLine(1000, 'texts', 1000, () => t);
    t = 1000;
    expect(p.update(100)).toBe('100/1000 texts, 100 texts/s, about 9s left');
    t = 1500;
    expect(p.update(150)).toBeUndefined();
    t = 2000;
    expect(p.update(200)).toBe('200/1000 texts, 100 texts/s, about 8s left');
    t = 2100;
    expect(p.update(1000)).toMatch(/^1000\/1000 texts, \d+ texts\/s$/);
  });

  it('says nothing of a rate it does not know yet', () => {
    const p = new ProgressLine(10, 'texts', 1000, () => 0);
    expect(p.update(0)).toBe('0/10 texts');
  });

  it('writes durations as people read them', () => {
    expect([duration(5.4), duration(75), duration(3725)]).toEqual(['5s', '1m15s', '1h02m']);
  });
});
