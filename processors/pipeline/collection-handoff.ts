import { TopicTable } from '../runtime/topic-table.ts';
import { seqOf, type RunConfig } from './run-config.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { RoundCollectionRecord } from './records.ts';

interface Slot {
  value: Promise<RoundCollectionRecord | undefined>;
  settled: boolean;
  settle(c: RoundCollectionRecord | undefined): void;
}

/** A collection's slot, opened when its text's handler starts: filled with the collection, or closed without one. */
export interface HandoffSlot {
  fill(c: RoundCollectionRecord): void;
  close(): void;
}

/**
 * Hands each finished collection of round r to the text of round r + 1 at the same position, in memory, inside a
 * fused chain. Texts are placed in partitions by position (PipelineWriter), so in every partition a collection's
 * text comes before the text that continues it and its slot is already open when the later text asks. A slot the
 * process does not hold (after a restart or a rebalance, a run replayed from a later round, or one evicted to bound
 * memory) is read from the round-pool topic, the chain's changelog: a collection's offset is committed only after
 * its pool record is stored, so a committed collection is always there.
 */
export class CollectionHandoff {
  private readonly slots = new Map<string, Slot>();
  private pool: Promise<TopicTable<RoundCollectionRecord>> | undefined;
  private table: TopicTable<RoundCollectionRecord> | undefined;
  /** Collections read back from the round-pool topic rather than handed over in memory. */
  fromTopic = 0;

  constructor(
    private readonly ctx: PipelineContext,
    private readonly maxHeld = 100_000,
  ) {}

  /** Opens the slot of the converted text at `seq` of a run. Synchronous, so a later text's handler always finds it. */
  open(runId: string, seq: number): HandoffSlot {
    const key = `${runId}/${seq}`;
    let settle!: (c: RoundCollectionRecord | undefined) => void;
    const slot: Slot = { value: new Promise((r) => (settle = r)), settled: false, settle: (c) => settle(c) };
    this.slots.set(key, slot);
    this.evict();
    const done = (c: RoundCollectionRecord | undefined) => {
      if (slot.settled) return;
      slot.settled = true;
      slot.settle(c);
      if (c === undefined && this.slots.get(key) === slot) this.slots.delete(key);
    };
    return { fill: (c) => done(c), close: () => done(undefined) };
  }

  /** The collection finished at (round, position) of the run, each taken once. */
  async take(run: RunConfig, round: number, position: number): Promise<RoundCollectionRecord> {
    const key = `${run.runId}/${seqOf(run, { round, position })}`;
    const slot = this.slots.get(key);
    if (slot) {
      this.slots.delete(key);
      const c = await slot.value;
      if (c) return c;
    }
    this.fromTopic++;
    const table = await this.poolTable();
    return table.get(`${run.runId}/${round}/${position}`, this.ctx.waitMs);
  }

  async stop(): Promise<void> {
    this.slots.clear();
    await this.table?.stop();
  }

  /** Keeps at most maxHeld filled slots: the oldest go, to be read back from the topic if still wanted. */
  private evict(): void {
    if (this.slots.size <= this.maxHeld) return;
    for (const [key, slot] of this.slots) {
      if (this.slots.size <= this.maxHeld) break;
      if (slot.settled) this.slots.delete(key);
    }
  }

  private poolTable(): Promise<TopicTable<RoundCollectionRecord>> {
    this.pool ??= (async () => {
      const t = new TopicTable<RoundCollectionRecord>(this.ctx.kafka, this.ctx.serde, this.ctx.topics.pool, 'round-collection', (c) => `${c.runId}/${c.round}/${c.position}`);
      this.table = t;
      await t.start();
      return t;
    })();
    return this.pool;
  }
}
