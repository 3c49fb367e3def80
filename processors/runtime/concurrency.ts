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
