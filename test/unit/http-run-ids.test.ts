import { describe, expect, it } from 'vitest';
import { RunIdRegistry } from '../../connectors/ingest/http-run-ids.ts';

describe('ids taken in per open run', () => {
  it('remembers ids per run, lets go of those not stored, and holds at most its bound per run', () => {
    const reg = new RunIdRegistry(3);
    const a = reg.forRun('a');
    a.take(['x', 'y']);
    expect(a.has('x')).toBe(true);
    expect(reg.forRun('b').has('x')).toBe(false);
    expect(a.room()).toBe(1);
    expect(() => a.take(['z', 'w'])).toThrow(/room left/);
    a.release(['y']);
    expect(a.has('y')).toBe(false);
    expect(reg.forRun('a').room()).toBe(2);
    expect(reg.size('a')).toBe(1);
    expect(() => new RunIdRegistry(0)).toThrow(/positive integer/);
  });
});
