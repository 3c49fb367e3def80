/** One source of the mix: its weight by tokens and what happens when it runs out. */
export interface MixSource {
  name: string;
  weight: number;
  onExhausted?: 'leave' | 'restart';
}

/**
 * The deterministic mix-ratio sampler (docs/method.md §5): at each step, emit from the source with the largest deficit
 * w_i·T − t_i (T tokens emitted so far, t_i from source i), ties by source order. Weights are normalised.
 * Used by the batch job over iterables and by the streaming processor over topics, so it only keeps counts.
 */
export class MixSampler {
  readonly weights: number[];
  readonly emitted: number[];
  readonly active: boolean[];
  total = 0;

  constructor(readonly sources: readonly MixSource[]) {
    if (sources.length === 0) throw new Error('a mix needs at least one source');
    for (const s of sources) if (!(s.weight >= 0) || !Number.isFinite(s.weight)) throw new Error(`mix source ${s.name}: weight must be a finite number ≥ 0 (got ${s.weight})`);
    const sum = sources.reduce((s, x) => s + x.weight, 0);
    if (sum <= 0) throw new Error('mix weights sum to 0');
    this.weights = sources.map((s) => s.weight / sum);
    this.emitted = sources.map(() => 0);
    this.active = sources.map((s) => s.weight > 0);
  }

  /** The source to emit from next, or -1 when every source has left the mix. */
  next(): number {
    let best = -1;
    let bestDeficit = -Infinity;
    for (let i = 0; i < this.weights.length; i++) {
      if (!this.active[i]) continue;
      const deficit = this.weights[i]! * this.total - this.emitted[i]!;
      if (deficit > bestDeficit) {
        best = i;
        bestDeficit = deficit;
      }
    }
    return best;
  }

  record(source: number, tokens: number): void {
    this.emitted[source]! += tokens;
    this.total += tokens;
  }

  /** A source ran out: it leaves the mix, and the others go on by their own deficits. Restarting is the caller's. */
  leave(source: number): void {
    this.active[source] = false;
  }

  realisedRatios(): number[] {
    return this.emitted.map((t) => (this.total === 0 ? 0 : t / this.total));
  }
}

export interface MixedItem<T> {
  source: number;
  item: T;
}

/**
 * Mixes re-iterable sources by token weight. A source that runs out leaves the mix, or restarts from its
 * beginning when configured so (the mix then ends when every non-restarting source has left, or at `limit`).
 */
export function* mixIterables<T>(sources: readonly (MixSource & { items: () => Iterable<T> })[], tokensOf: (item: T) => number, limit = Infinity): Generator<MixedItem<T>> {
  const sampler = new MixSampler(sources);
  const iters = sources.map((s) => s.items()[Symbol.iterator]());
  let count = 0;
  const anyFinite = () => sources.some((s, i) => sampler.active[i] && s.onExhausted !== 'restart');
  while (count < limit) {
    const i = sampler.next();
    if (i < 0 || !anyFinite()) return;
    let r = iters[i]!.next();
    if (r.done && sources[i]!.onExhausted === 'restart') {
      iters[i] = sources[i]!.items()[Symbol.iterator]();
      r = iters[i]!.next();
    }
    if (r.done) {
      sampler.leave(i);
      continue;
    }
    sampler.record(i, tokensOf(r.value));
    count++;
    yield { source: i, item: r.value };
  }
}
