/**
 * Maps items through fn with at most `limit` promises pending, keeping result order. Synchronous results take
 * a fast path with no promise allocation, which is what keeps cheap handlers near bare-loop speed.
 */
export async function mapOrdered<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => R | Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  const pending = new Set<Promise<void>>();
  for (let i = 0; i < items.length; i++) {
    const r = fn(items[i]!, i);
    if (r instanceof Promise) {
      const p: Promise<void> = r.then((v) => {
        out[i] = v;
        pending.delete(p);
      });
      pending.add(p);
      if (pending.size >= limit) await Promise.race(pending);
    } else {
      out[i] = r;
    }
  }
  await Promise.all(pending);
  return out;
}

/**
 * Runs steps one after another in the order they were submitted, whatever order their inputs resolve in: stateful
 * handlers (a mixer's counts, a packer's buffer) call it synchronously per record, so the state changes in input
 * order while the runtime keeps several handler calls in flight. A step submitted while none is pending runs at once
 * (and a synchronous one returns its value, no promise); a failed step does not stop later ones.
 */
export function inOrder(): <T>(step: () => T | Promise<T>) => T | Promise<T> {
  let tail: Promise<unknown> | undefined;
  const track = <T>(run: Promise<T>): Promise<T> => {
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    tail = settled;
    void settled.then(() => {
      if (tail === settled) tail = undefined;
    });
    return run;
  };
  return (step) => {
    if (tail === undefined) {
      const r = step();
      return r instanceof Promise ? track(r) : r;
    }
    return track(tail.then(step));
  };
}

/** f(v) at once when v is a value, once it resolves when it is a promise: no microtask where nothing is pending. */
export function whenReady<T, R>(v: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/**
 * At most `n` calls of the returned function's steps run at once; the others wait their turn in order. For work whose
 * deadline starts when it is handed on (an LLM pool's queue), so that it is handed on only when it can start.
 */
export function limiter(n: number): <T>(step: () => Promise<T>) => Promise<T> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`limiter: expected a whole number ≥ 1, got ${n}`);
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (step) => {
    // A finishing step hands its slot straight to the next waiter, so no newcomer slips in between.
    if (running < n) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await step();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
