import { hashString, mix32 } from '../../processors/pretrain-text/seeded-random.ts';

/**
 * Flags and a small counter per id, kept by a 64-bit hash of the id in typed arrays (open addressing): about 16 bytes
 * an id and no strings, so a run of millions of texts is reconciled in tens of megabytes. Two ids share a key with
 * odds of about n²/2⁶⁵ (1e-7 for 10M ids); ids are read back from the topics when they must be named.
 */
export class IdFlags {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private flagArr: Uint16Array;
  private countArr: Uint8Array;
  size = 0;

  constructor(capacity = 1 << 16) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity * 2)));
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.flagArr = new Uint16Array(cap);
    this.countArr = new Uint8Array(cap);
  }

  private slot(id: string, insert: boolean): number {
    // hi is never 0 for a used slot, so 0 marks an empty one.
    const hi = (hashString(id) | 1) >>> 0;
    const lo = mix32(hashString(`\u0001${id}`) ^ 0x9e3779b9);
    const mask = this.hi.length - 1;
    for (let i = (hi ^ lo) & mask; ; i = (i + 1) & mask) {
      if (this.hi[i] === 0) {
        if (!insert) return -1;
        this.hi[i] = hi;
        this.lo[i] = lo;
        this.size++;
        return i;
      }
      if (this.hi[i] === hi && this.lo[i] === lo) return i;
    }
  }

  /** Sets flags on id (adding it), and counts one more sighting when `count` is true. */
  mark(id: string, flags: number, count = false): void {
    if ((this.size + 1) * 2 > this.hi.length) this.grow();
    const i = this.slot(id, true);
    this.flagArr[i]! |= flags;
    if (count && this.countArr[i]! < 255) this.countArr[i]!++;
  }

  /** Sets flags on id only if it is already there (an id of another run, say, is ignored). */
  markIfKnown(id: string, flags: number): boolean {
    const i = this.slot(id, false);
    if (i < 0) return false;
    this.flagArr[i]! |= flags;
    return true;
  }

  flags(id: string): number {
    const i = this.slot(id, false);
    return i < 0 ? 0 : this.flagArr[i]!;
  }

  count(id: string): number {
    const i = this.slot(id, false);
    return i < 0 ? 0 : this.countArr[i]!;
  }

  /** How many ids pass the test on their flags and count. */
  tally(test: (flags: number, count: number) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.hi.length; i++) if (this.hi[i] !== 0 && test(this.flagArr[i]!, this.countArr[i]!)) n++;
    return n;
  }

  private grow(): void {
    const { hi, lo, flagArr, countArr } = this;
    const cap = hi.length * 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.flagArr = new Uint16Array(cap);
    this.countArr = new Uint8Array(cap);
    const mask = cap - 1;
    for (let j = 0; j < hi.length; j++) {
      if (hi[j] === 0) continue;
      let i = (hi[j]! ^ lo[j]!) & mask;
      while (this.hi[i] !== 0) i = (i + 1) & mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.flagArr[i] = flagArr[j]!;
      this.countArr[i] = countArr[j]!;
    }
  }
}
