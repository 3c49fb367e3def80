
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

