import { nearLimit, oversizedReason, rawRecordBytes } from '../ingest/message-limits.ts';
import { maxTextBytes } from '../ingest/max-text-bytes.ts';
import { Bits, FingerprintTable, NumberColumn } from './compact-ids.ts';
import { readTextRecords } from './text-records.ts';

export interface Reject {
  line: number;
  reason: string;
}

export interface ScanOptions {
  /** Each accepted text is checked against the raw topic's limit (max.message.bytes) for this run. */
  limit?: { bytes: number; runId: string };
  /** Each accepted text's convert rank, kept (a run that converts a fraction of its texts). */
  rank?: (id: string) => number;
  maxBytes?: number;
  /** stdin's JSONL, copied to this file: `path` is then "-". */
  from?: string;
  /** Tests only: fingerprints that collide, so that the confirming paths run. */
  weakFingerprints?: boolean;
  /** Each rejected line, as soon as it is known (not in line order: reused ids and oversized texts come last). */
  onReject: (r: Reject) => void;
}

/**
 * One pass over a text file that keeps a few bytes per text, not the texts or their ids: every line the reader
 * accepts gets a slot (slots follow the lines), with its line number, its id's 64-bit fingerprint in a table, and
 * optionally its convert rank. A repeated id is rejected with the line that first used it, as an in-memory Set
 * would: a fingerprint seen before marks a suspect, and the suspects are settled by reading their ids (and their
 * first lines' ids) back from the file, so two different ids that share a fingerprint are both kept.
 */
export class TextFileScan {
  readonly lines = new NumberColumn((n) => new Uint32Array(n));
  readonly ranks: NumberColumn<Float64Array> | undefined;
  /** Slots rejected (a reused id, a text too large for the topic): never part of the run. */
  readonly dead = new Bits();
  readonly table: FingerprintTable;
  /** Fingerprints that more than one accepted id shares, each with its ids' slots (empty but for a 2⁻⁶⁴ chance). */
  readonly shared = new Map<string, Map<string, number>>();
  rejected = 0;
  private deadCount = 0;

  private constructor(
    readonly path: string,
    private readonly opts: ScanOptions,
  ) {
    this.ranks = opts.rank ? new NumberColumn((n) => new Float64Array(n)) : undefined;
    this.table = new FingerprintTable(1024, opts.weakFingerprints);
  }

  /** Lines the reader accepted, rejected or not. */
  get slots(): number {
    return this.lines.length;
  }

  /** Texts of the run: accepted lines less those rejected here. */
  get live(): number {
    return this.slots - this.deadCount;
  }

  /** The file the texts are read from (stdin's copy, for "-"). */
  get source(): string | undefined {
    return this.opts.from;
  }

  static async run(path: string, opts: ScanOptions): Promise<TextFileScan> {
    const scan = new TextFileScan(path, opts);
    await scan.firstPass();
    return scan;
  }

  /** The slot of a text of the run by its id, or −1 (not a text of the run, or one rejected). */
  slotOf(id: string): number {
    let slot = this.table.find(id);
    if (slot < 0) return -1;
    if (this.shared.size > 0) {
      const same = this.shared.get(this.table.keyOf(id));
      if (same) slot = same.get(id) ?? -1;
    }
    return slot >= 0 && !this.dead.get(slot) ? slot : -1;
  }

  /** The accepted records again, each with its slot; checks that the file still holds the ids it held. */
  async *records(): AsyncGenerator<{ slot: number; id: string; text: string; line: number }> {
    let slot = 0;
    for await (const r of readTextRecords(this.path, this.opts.maxBytes ?? maxTextBytes(), this.opts.from)) {
      if (!r.ok) continue;
      const s = slot++;
      if (this.lines.at(s) !== r.line || (!this.dead.get(s) && this.slotOf(r.id) !== s)) throw new Error(`${this.path} changed while the run was being read (line ${r.line})`);
      yield { slot: s, id: r.id, text: r.text, line: r.line };
    }
    if (slot !== this.slots) throw new Error(`${this.path} changed while the run was being read (${slot} records, ${this.slots} before)`);
  }

  /** The ids of some slots, read back from the file (for messages that name texts). */
  async idsOf(slots: readonly number[]): Promise<string[]> {
    const want = new Map(slots.map((s) => [this.lines.at(s), s]));
    const ids = new Map<number, string>();
    for await (const r of readTextRecords(this.path, this.opts.maxBytes ?? maxTextBytes(), this.opts.from)) {
      if (r.ok && want.has(r.line)) ids.set(want.get(r.line)!, r.id);
      if (ids.size === want.size) break;
    }
    return slots.map((s) => ids.get(s) ?? `(line ${this.lines.at(s)})`);
  }

  private reject(slot: number | undefined, r: Reject): void {
    if (slot !== undefined && this.dead.set(slot)) this.deadCount++;
    this.rejected++;
    this.opts.onReject(r);
  }

  private async firstPass(): Promise<void> {
    const { limit, rank } = this.opts;
    const suspects: { slot: number; first: number }[] = [];
    const near: { slot: number; bytes: number }[] = [];
    for await (const r of readTextRecords(this.path, this.opts.maxBytes ?? maxTextBytes(), this.opts.from)) {
      if (!r.ok) {
        this.reject(undefined, { line: r.line, reason: r.reason });
        continue;
      }
      const slot = this.lines.push(r.line);
      if (rank) this.ranks!.push(rank(r.id));
      const first = this.table.insert(r.id, slot);
      if (first >= 0) suspects.push({ slot, first });
      // The record's size depends a little on the run's text count (its seq is encoded with it): measured with 0 here.
      const t = { id: r.id, text: r.text, source: `${this.path}:${r.line}` };
      if (limit && nearLimit(t, limit.runId, limit.bytes)) near.push({ slot, bytes: rawRecordBytes(t, limit.runId, 0) });
    }
    if (suspects.length > 0) await this.settleSuspects(suspects);
    if (limit) {
      // As checked on the texts left after reused ids: encoded with their count as seq.
      const extra = varintBytes(2 * this.live) - varintBytes(0);
      for (const n of near) {
        const size = n.bytes + extra;
        if (!this.dead.get(n.slot) && size > limit.bytes) this.reject(n.slot, { line: this.lines.at(n.slot), reason: `${this.path}:${this.lines.at(n.slot)}: ${oversizedReason(size, limit.bytes)}` });
      }
    }
  }

  /** Suspects (a fingerprint seen before) by their ids: a reused id is rejected naming its first line; a new one stays. */
  private async settleSuspects(suspects: { slot: number; first: number }[]): Promise<void> {
    const slots = [...new Set(suspects.flatMap((s) => [s.first, s.slot]))].sort((a, b) => a - b);
    const names = await this.idsOf(slots);
    const idOf = new Map(slots.map((s, i) => [s, names[i]!]));
    const groups = new Map<number, Map<string, number>>();
    for (const s of suspects) {
      let group = groups.get(s.first);
      if (!group) groups.set(s.first, (group = new Map([[idOf.get(s.first)!, s.first]])));
      const id = idOf.get(s.slot)!;
      const prev = group.get(id);
      if (prev !== undefined) {
        const line = this.lines.at(s.slot);
        this.reject(s.slot, { line, reason: `${this.path}:${line}: id "${id}" already used on line ${this.lines.at(prev)}` });
      } else {
        group.set(id, s.slot);
        this.shared.set(this.table.keyOf(id), group);
      }
    }
  }
}

/** Bytes of a non-negative integer as an Avro varint (after zig-zag: pass 2n). */
function varintBytes(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}
