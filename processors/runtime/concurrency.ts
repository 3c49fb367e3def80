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
 * Runs async steps one after another in the order they were submitted, whatever order their inputs resolve in:
 * stateful handlers (a mixer's counts, a packer's buffer) call it synchronously per record, so the state changes in
 * input order while the runtime keeps several handler calls in flight. A failed step does not stop later ones.
 */
export function inOrder(): <T>(step: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (step) => {
    const run = tail.then(step);
    tail = run.catch(() => undefined);
    return run;
  };
}
