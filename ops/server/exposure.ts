import { isIP } from 'node:net';

/** Whether an address to listen on is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^(0+:){7}0*1$/.test(h);
  return false;
}

/**
 * What an operator should hear before others can reach the server: beyond loopback, the dashboard, its API and
 * /metrics answer anyone (they take no token), and a token made up for this process (none configured) guards
 * ingest and control only as long as its one copy, on stderr, stays private.
 */
export function exposureWarnings(host: string, tokenGenerated: boolean): string[] {
  if (isLoopback(host)) return [];
  const out = [`listening on ${host}, reachable from other machines: the dashboard, /api/dashboard and /metrics answer without a token`];
  if (tokenGenerated) out.push(`listening on ${host} without a configured API token: ingest and control take the random token printed on stderr; set --token or IPT_API_TOKEN`);
  return out;
}

/**
 * The same for `ipt serve-llm`: beyond loopback without an API key, anyone who can reach it can spend its model's
 * time (and, before the key, read /v1/models and /tokenize).
 */
export function llmExposureWarnings(host: string, hasApiKey: boolean): string[] {
  if (isLoopback(host) || hasApiKey) return [];
  return [`listening on ${host}, reachable from other machines, without an API key: anyone who reaches it can run completions; set IPT_LLM_API_KEY (or --api-key)`];
}
