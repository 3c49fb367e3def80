/**
 * Compact per-text structures for a run of any size: a bit set, growable typed arrays and a table of 64-bit id
 * fingerprints. A run's ids are then held as a few bytes each instead of as strings in a Set (about 100 bytes each).
 */

/** A bit set over 0…n−1 that grows as needed. */
export class Bits {
  private words: Uint32Array;

  constructor(size = 0) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
  }

  get(i: number): boolean {
    const w = i >>> 5;
    return w < this.words.length && (this.words[w]! & (1 << (i & 31))) !== 0;
  }

  /** Sets bit i; true when it was not set before. */
  set(i: number): boolean {
    const w = i >>> 5;
    if (w >= this.words.length) this.words = grown(this.words, w + 1) as Uint32Array;
    const bit = 1 << (i & 31);
    if ((this.words[w]! & bit) !== 0) return false;
    this.words[w]! |= bit;
    return true;
  }

  get bytes(): number {
    return this.words.byteLength;
  }
}

type Typed = Uint32Array | Int32Array | Float64Array;

/** A copy of `a` with room for at least `need` elements (doubling, so appends cost O(1) amortised). */
function grown(a: Typed, need: number): Typed {
  let n = Math.max(16, a.length);
  while (n < need) n *= 2;
  const b = new (a.constructor as new (n: number) => Typed)(n);
  b.set(a);
  return b;
}

/** An append-only array of numbers in a typed array: 4 or 8 bytes each instead of a JS array's boxed slots. */
export class NumberColumn<T extends Typed> {
  private a: T;
  length = 0;

  constructor(make: (n: number) => T) {
    this.a = make(16);
  }

  push(v: number): number {
    if (this.length >= this.a.length) this.a = grown(this.a, this.length + 1) as T;
    this.a[this.length] = v;
    return this.length++;
  }

  at(i: number): number {
    return this.a[i]!;
  }

  put(i: number, v: number): void {
    if (i >= this.a.length) this.a = grown(this.a, i + 1) as T;
    if (i >= this.length) this.length = i + 1;
    this.a[i] = v;
  }

  /** The values as one typed array (a view, no copy). */
  view(): T {
    return this.a.subarray(0, this.length) as T;
  }

  get bytes(): number {
    return this.a.byteLength;
  }
}

let H1 = 0;
let H2 = 0;

/** Two independent 32-bit hashes of a string's UTF-16 units (cyrb53's mixing), left in H1, H2: no allocation. */
function fingerprint(s: string): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  H1 = h1 >>> 0;
  H2 = h2 >>> 0;
}

/**
 * Ids by their 64-bit fingerprints, each with a number (its slot): open addressing, 12 bytes per cell, at most 3/4
 * full, so 16–32 bytes per id. Two different ids may share a fingerprint (about n²/2⁶⁵ for n ids: once in 10⁷ runs
 * of a million texts); the table cannot tell them apart, so its users confirm a match against the ids themselves.
 */
export class FingerprintTable {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private slots: Int32Array;
  private mask: number;
  size = 0;

  constructor(
    expected = 1024,
    /** Tests only: fingerprints cut to 3 bits, so that different ids share them and the confirming paths run. */
    private readonly weak = false,
  ) {
    let cap = 1024;
    while (cap * 0.75 < expected) cap *= 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  /** The slot stored under s's fingerprint, or −1. */
  find(s: string): number {
    this.hash(s);
    return this.findHashed(H1, H2);
  }

  /** s's fingerprint as a string, to name it in a small side table. */
  keyOf(s: string): string {
    this.hash(s);
    return `${H1}:${H2}`;
  }

  /** Stores `slot` under s's fingerprint unless the fingerprint is there; returns the slot already there, or −1. */
  insert(s: string, slot: number): number {
    this.hash(s);
    const h1 = H1;
    const h2 = H2;
    const found = this.findHashed(h1, h2);
    if (found >= 0) return found;
    if ((this.size + 1) > (this.slots.length * 3) / 4) this.grow();
    this.place(h1, h2, slot);
    this.size++;
    return -1;
  }

  get bytes(): number {
    return this.hi.byteLength + this.lo.byteLength + this.slots.byteLength;
  }

  private hash(s: string): void {
    fingerprint(s);
    if (this.weak) {
      H1 &= 7;
      H2 = 0;
    }
  }

  private findHashed(h1: number, h2: number): number {
    for (let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask; ; i = (i + 1) & this.mask) {
      const s = this.slots[i]!;
      if (s < 0) return -1;
      if (this.hi[i] === h1 && this.lo[i] === h2) return s;
    }
  }

  private place(h1: number, h2: number, slot: number): void {
    let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask;
    while (this.slots[i]! >= 0) i = (i + 1) & this.mask;
    this.hi[i] = h1;
    this.lo[i] = h2;
    this.slots[i] = slot;
  }

  private grow(): void {
    const { hi, lo, slots } = this;
    const cap = slots.length * 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let i = 0; i < slots.length; i++) if (slots[i]! >= 0) this.place(hi[i]!, lo[i]!, slots[i]!);
  }
}
