import type { ReadBackTable } from '../runtime/read-back-table.ts';
import { recordKey } from './pipeline-topics.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { PipelineEntry, RawTextRecord, RoundCollectionRecord } from './records.ts';

/**
 * The round-pool record of a collection, leaving out each context that is a raw text whose record is known: the
 * raw topic is retained and holds it under `contextFrom`, so the pool (the fused stage's changelog) keeps the pairs
 * and flags rather than a second copy of every text, the way Kafka Streams reuses a source topic as a changelog.
 */
export function leaveOutContexts(c: RoundCollectionRecord): RoundCollectionRecord {
  let collection: PipelineEntry[] | undefined;
  for (let i = 0; i < c.collection.length; i++) {
    const e = c.collection[i]!;
    if (!e.rawKey) continue;
    collection ??= c.collection.slice();
    collection[i] = { contextId: e.contextId, context: '', pairs: e.pairs, inheritFromPrev: e.inheritFromPrev, followedByNext: e.followedByNext, contextFrom: e.rawKey };
  }
  return collection ? { ...c, collection } : c;
}

/**
 * Puts back the contexts a round-pool record left out (leaveOutContexts), reading them back from the raw topic by key:
 * only a collection read back from the pool (after a restart, a rebalance, a replay or an eviction) needs it. A raw
 * text is needed only while a collection is restored, so the read-back lets it go once used and holds at most
 * `maxHeld` texts read ahead (one wanted by a later collection again is read back again).
 */
export class PoolContexts {
  private table: ReadBackTable<RawTextRecord> | undefined;

  constructor(
    private readonly ctx: Pick<PipelineContext, 'tables' | 'topics' | 'waitMs'>,
    private readonly maxHeld = 20_000,
  ) {}

  /** The collection with every context in place: the record itself, at once, when it left none out. */
  restore(c: RoundCollectionRecord): RoundCollectionRecord | Promise<RoundCollectionRecord> {
    return c.collection.some((e) => e.contextFrom) ? this.fill(c) : c;
  }

  private async fill(c: RoundCollectionRecord): Promise<RoundCollectionRecord> {
    const raw = this.rawTable();
    const collection = await Promise.all(
      c.collection.map(async (e): Promise<PipelineEntry> => {
        if (!e.contextFrom) return e;
        const text = await raw.get(e.contextFrom, this.ctx.waitMs).catch(() => {
          throw new Error(`collection ${c.runId}/${c.round}/${c.position}: its entry ${e.contextId} names raw text ${e.contextFrom}, which is not in ${this.ctx.topics.raw} after ${this.ctx.waitMs} ms`);
        });
        return { ...e, context: text.text, contextFrom: '', rawKey: e.contextFrom };
      }),
    );
    return { ...c, collection };
  }

  private rawTable(): ReadBackTable<RawTextRecord> {
    // Texts the preset keeps raw are never in a collection.
    this.table ??= this.ctx.tables.readBack<RawTextRecord>(this.ctx.topics.raw, 'raw-text', (r) => (r.convert ? recordKey(r.runId, r.id) : undefined), { maxHeld: this.maxHeld });
    return this.table;
  }

  async stop(): Promise<void> {
    await this.table?.stop();
  }
}
