import { describe, expect, it } from 'vitest';
import { bearerCheck } from '../../connectors/http/bearer.ts';
import { llmExposureWarnings } from '../../ops/server/exposure.ts';

const TOKEN = 'unit-token-0123456789abcdef';

describe('the bearer token check', () => {
  it('takes the token after the Bearer scheme, in any case, after one or more spaces', () => {
    const ok = bearerCheck(TOKEN);
    for (const h of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`]) expect(ok(h), h).toBe(true);
  });

  it('refuses everything else: none, wrong, a prefix, a longer one, another scheme, a tab, two tokens', () => {
    const ok = bearerCheck(TOKEN);
    for (const h of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer wrong-token-0123456789ab',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN.slice(0, 8)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Bearer\t${TOKEN}`,
      TOKEN,
      `Token ${TOKEN}`,
      `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
      `Bearer ${TOKEN.toUpperCase()}`,
    ]) {
      expect(ok(h), String(h)).toBe(false);
    }
  });

  it('refuses to guard anything with an empty token', () => {
    expect(() => bearerCheck('')).toThrow(/empty/);
  });
});

describe('who can reach ipt serve-llm', () => {
  it('warns beyond loopback without an API key, and only then', () => {
    expect(llmExposureWarnings('127.0.0.1', false)).toEqual([]);
    expect(llmExposureWarnings('::1', false)).toEqual([]);
    expect(llmExposureWarnings('0.0.0.0', true)).toEqual([]);
    const w = llmExposureWarnings('0.0.0.0', false);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/reachable from other machines.*IPT_LLM_API_KEY/);
    expect(llmExposureWarnings('::', false)).toHaveLength(1);
  });
});
