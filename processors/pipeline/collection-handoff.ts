import { deserialize, serialize } from 'node:v8';
import { DiskSpool, type SpoolRef } from '../runtime/disk-spool.ts';
import type { ReadBackTable } from '../runtime/read-back-table.ts';
import { PoolContexts } from './pool-contexts.ts';
import { seqOf, type RunConfig } from './run-config.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { RoundCollectionRecord } from './records.ts';

/**
 * One collection's place between its text and the next round's: settled once, with the collection or without one.
 * A class, not closures: one is opened per converted text on the hot path.
 */
class Slot implements HandoffSlot {
  settled = false;
  value: RoundCollectionRecord | undefined;
  private waiters: ((c: RoundCollectionRecord | undefined) => void)[] | undefined;

  constructor(
    private readonly slots: Map<number, Slot>,
    private readonly seq: number,
  ) {}

  fill(c: RoundCollectionRecord): void {
    this.settle(c);
  }

  close(): void {
    this.settle(undefined);
  }

  /** The collection, once settled. */
  wait(): RoundCollectionRecord | undefined | Promise<RoundCollectionRecord | undefined> {
    if (this.settled) return this.value;
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  private settle(c: RoundCollectionRecord | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.value = c;
    if (c === undefined && this.slots.get(this.seq) === this) this.slots.delete(this.seq);
    if (this.waiters) for (const w of this.waiters) w(c);
    this.waiters = undefined;
  }
}

/** A collection's slot, opened when its text's handler starts: filled with the collection, or closed without one. */
export interface HandoffSlot {
  fill(c: RoundCollectionRecord): void;
  close(): void;
}

/**
 * Hands each finished collection of round r to the text of round r + 1 at the same position, in memory, inside a
 * fused chain. Texts are placed in partitions by position (PipelineWriter), so in every partition a collection's
 * text comes before the text that continues it and its slot is already open when the later text asks. Beyond
 * `maxHeld` filled slots the oldest are moved to a spool on local disk (a round of a large run does not fit in memory;
 * a spooled slot is read back in microseconds, whole, contexts included). A slot the process does not hold (after a
 * restart or a rebalance, or a run replayed from a later round) is read from the round-pool topic, the chain's
 * changelog: a collection's offset is committed only after its pool record is stored, so a committed collection is
 * always there.
 */
export class CollectionHandoff {
  /** Open slots per run, by seq: numbers, so opening and taking one builds and hashes no string. */
  private readonly runs = new Map<string, Map<number, Slot>>();
  /** Filled slots moved to disk, per run, by seq. */
  private readonly spooled = new Map<string, Map<number, SpoolRef>>();
  private spool: DiskSpool | undefined;
  private spoolFailed = false;
  private pool: Promise<ReadBackTable<RoundCollectionRecord>> | undefined;
  private table: ReadBackTable<RoundCollectionRecord> | undefined;
  /** Collections read back from the round-pool topic rather than handed over in memory. */
  fromTopic = 0;
  /** Collections taken from the disk spool. */
  fromDisk = 0;
  private readonly contexts: PoolContexts;

  constructor(
    private readonly ctx: PipelineContext,
    private readonly maxHeld = 100_000,
    /** Most collections (and raw texts) a read-back holds ahead of being taken: memory not following the topics. */
    private readonly readBackMax = 20_000,
    /** Where spooled slots go (the system's temporary folder unless given). */
    private readonly spoolDir?: string,
  ) {
    this.contexts = new PoolContexts(ctx, readBackMax);
  }

  /** Opens the slot of the converted text at `seq` of a run. Synchronous, so a later text's handler always finds it. */
  open(runId: string, seq: number): HandoffSlot {
    let slots = this.runs.get(runId);
    if (!slots) this.runs.set(runId, (slots = new Map()));
    const slot = new Slot(slots, seq);
    slots.set(seq, slot);
    // A text handled again (after an abandoned transaction) supersedes what an earlier attempt spooled.
    const spooled = this.spooled.get(runId);
    const old = spooled?.get(seq);
    if (old) {
      spooled!.delete(seq);
      this.spool!.free(old);
    }
    if (this.held() > this.maxHeld) this.evict();
    return slot;
  }

  /** The collection finished at (round, position) of the run, each taken once: at once when its slot is filled. */
  take(run: RunConfig, round: number, position: number): RoundCollectionRecord | Promise<RoundCollectionRecord> {
    const slots = this.runs.get(run.runId);
    const seq = seqOf(run, { round, position });
    const slot = slots?.get(seq);
    if (!slot) return this.fromSpool(run.runId, seq) ?? this.fromPool(run, round, position);
    slots!.delete(seq);
    const c = slot.wait();
    if (c instanceof Promise) return c.then((v) => v ?? this.fromPool(run, round, position));
    return c ?? this.fromPool(run, round, position);
  }

  private fromSpool(runId: string, seq: number): RoundCollectionRecord | undefined {
    const spooled = this.spooled.get(runId);
    const ref = spooled?.get(seq);
    if (!ref) return undefined;
    spooled!.delete(seq);
    if (spooled!.size === 0) this.spooled.delete(runId);
    this.fromDisk++;
    return deserialize(this.spool!.take(ref)) as RoundCollectionRecord;
  }

  private async fromPool(run: RunConfig, round: number, position: number): Promise<RoundCollectionRecord> {
    this.fromTopic++;
    const table = await this.poolTable();
    return this.contexts.restore(await table.get(`${run.runId}/${round}/${position}`, this.ctx.waitMs));
  }

  /** Slots spooled to disk now. */
  get onDisk(): number {
    let n = 0;
    for (const s of this.spooled.values()) n += s.size;
    return n;
  }

  async stop(): Promise<void> {
    this.runs.clear();
    this.spooled.clear();
    this.spool?.close();
    this.spool = undefined;
    await Promise.all([this.table?.stop(), this.contexts.stop()]);
  }

  /** Slots open in all runs (there are few runs at a time). */
  private held(): number {
    let n = 0;
    for (const slots of this.runs.values()) n += slots.size;
    return n;
  }

  /** Keeps at most maxHeld filled slots in memory: the oldest go to the disk spool. */
  private evict(): void {
    let held = this.held();
    for (const [runId, slots] of this.runs) {
      for (const [seq, slot] of slots) {
        if (held <= this.maxHeld) break;
        if (slot.settled) {
          slots.delete(seq);
          held--;
          // A closed slot (no collection) is deleted when it settles; a filled one is written out. One the disk refuses
          // (full, or failing) stays in memory: a bound overrun for a while beats a collection lost.
          if (slot.value && !this.toSpool(runId, seq, slot.value)) {
            slots.set(seq, slot);
            return;
          }
        }
      }
      if (slots.size === 0) this.runs.delete(runId);
    }
  }

  /** Writes a filled slot to the spool; false (and a warning, once) when the disk refuses it. */
  private toSpool(runId: string, seq: number, c: RoundCollectionRecord): boolean {
    let ref: SpoolRef;
    try {
      this.spool ??= new DiskSpool({ dir: this.spoolDir, name: 'handoff' });
      ref = this.spool.put(serialize(c));
    } catch (err) {
      if (!this.spoolFailed) this.ctx.logger.warn({ err: (err as Error).message }, 'the hand-over cannot spool collections to disk: they stay in memory, over IPT_FUSED_MAX_HELD');
      this.spoolFailed = true;
      return false;
    }
    let spooled = this.spooled.get(runId);
    if (!spooled) this.spooled.set(runId, (spooled = new Map()));
    const old = spooled.get(seq);
    if (old) this.spool.free(old);
    spooled.set(seq, ref);
    return true;
  }

  /** Each collection is taken once, so the table lets it go when taken; asked for again, it is read back again. */
  private poolTable(): Promise<ReadBackTable<RoundCollectionRecord>> {
    this.pool ??= (async () => {
      const t = this.ctx.tables.readBack<RoundCollectionRecord>(this.ctx.topics.pool, 'round-collection', (c) => `${c.runId}/${c.round}/${c.position}`, { maxHeld: this.readBackMax });
      this.table = t;
      return t;
    })();
    return this.pool;
  }
}
