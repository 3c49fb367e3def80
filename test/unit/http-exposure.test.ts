import { describe, expect, it } from 'vitest';
import { exposureWarnings, isLoopback } from '../../ops/server/exposure.ts';

describe('who can reach ipt serve', () => {
  it('tells loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.org', '::ffff:10.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
  it('warns when others can reach it, and more when no token was configured', () => {
    expect(exposureWarnings('127.0.0.1', true)).toEqual([]);
    expect(exposureWarnings('0.0.0.0', false)).toEqual([expect.stringMatching(/reachable from other machines.*without a token/)]);
    const w = exposureWarnings('0.0.0.0', true);
    expect(w).toHaveLength(2);
    expect(w[1]).toMatch(/without a configured API token.*IPT_API_TOKEN/);
  });
});
