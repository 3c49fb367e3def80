import { ConfigError } from './runtime-config.ts';

export interface Backoff {
  baseMs: number;
  capMs: number;
}

/**
 * Capped exponential backoff with jitter: attempt 0 waits about baseMs, each next attempt twice as long up to capMs,
 * each wait drawn from its upper half so that many waiting callers do not retry in lockstep.
 */
export function backoffDelay(attempt: number, opts: Backoff = { baseMs: 200, capMs: 5_000 }, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * A duration in milliseconds from the environment, strictly: anything but a whole number of milliseconds is a
 * configuration error naming the variable, not a silent default.
 */
export function durationEnv(env: NodeJS.ProcessEnv, name: string, fallbackMs: number, fallbackInWords: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackMs;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name}=${raw}: expected a whole number of milliseconds (default ${fallbackMs}, ${fallbackInWords})`);
  return n;
}
