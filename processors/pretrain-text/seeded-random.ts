/** A small deterministic PRNG (mulberry32) seeded from a string hash (FNV-1a), so draws replay exactly. */
export interface Rng {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
  shuffle<T>(xs: readonly T[]): T[];
  weighted<T extends string>(weights: Record<T, number>): T;
}

/** murmur3's finaliser: FNV-1a alone leaves similar strings (ports, key suffixes) with correlated high bits. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * FNV-1a over the UTF-16 code units of s (or of s[start, end)). `from` continues an earlier hash:
 * hashString(b, hashString(a)) = hashString(a + b).
 */
export function hashString(s: string, from = 0x811c9dc5, start = 0, end = s.length): number {
  let h = from;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const FINGERPRINT_SPAN = 64;

/**
 * A text's fingerprint for seeding its draws, continuing `from`: its length and its first and last 64 code units
 * (the whole text when shorter). Hashing a long text whole would cost a pass over it per group for no better draws.
 */
export function textFingerprint(s: string, from: number): number {
  const h = hashString(String(s.length), from);
  if (s.length <= 2 * FINGERPRINT_SPAN) return hashString(s, h);
  return hashString(s, hashString(s, h, 0, FINGERPRINT_SPAN), s.length - FINGERPRINT_SPAN, s.length);
}

interface WeightTable<T extends string> {
  entries: [T, number][];
  total: number;
}

function weightTable<T extends string>(weights: Record<T, number>): WeightTable<T> {
  const entries = Object.entries(weights) as [T, number][];
  let total = 0;
  for (const [, w] of entries) total += w;
  return { entries, total };
}

/** A frozen weights object's entries and total, computed once (layouts are drawn per text). */
const WEIGHT_TABLES = new WeakMap<object, WeightTable<string>>();

/** mulberry32 as a class (one is drawn per templated group, on the hot path: no closures to allocate). */
class Mulberry32 implements Rng {
  constructor(private a: number) {}

  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  weighted<T extends string>(weights: Record<T, number>): T {
    let table = WEIGHT_TABLES.get(weights) as WeightTable<T> | undefined;
    if (!table) {
      table = weightTable(weights);
      if (Object.isFrozen(weights)) WEIGHT_TABLES.set(weights, table);
    }
    const { entries, total } = table;
    let x = this.next() * total;
    for (const [k, w] of entries) {
      if ((x -= w) < 0) return k;
    }
    return entries[entries.length - 1]![0];
  }
}

export function seededRng(seed: string | number): Rng {
  return new Mulberry32(typeof seed === 'number' ? seed >>> 0 : hashString(seed));
}
