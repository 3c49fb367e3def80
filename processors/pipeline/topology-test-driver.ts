import { loadSchema, type LoadedSchema } from '../runtime/schemas.ts';
import { deadLetterTopic, type Emit, type HandlerResult, type Stage } from '../runtime/processor.ts';
import { DLQ_HEADERS } from '../runtime/dead-letter.ts';
import { sourcedTables, type Tables } from '../runtime/tables.ts';
import type { FollowedBatch, FollowSource } from '../runtime/topic-table.ts';
import type { Segment, TopicSource } from '../runtime/topic-scan.ts';
import { hashString } from '../pretrain-text/seeded-random.ts';

/** A record in a driver topic: its key, partition, offset and the value's Avro bytes (or a dead letter's reason). */
export interface DriverRecord {
  key: string | null;
  partition: number;
  offset: number;
  value: Buffer | null;
  headers: Record<string, string>;
}

interface Follower {
  delivered: number[];
  eachBatch: (batch: FollowedBatch) => Promise<void>;
  pumping: Promise<void>;
}

/** Values are plain Avro binary with the record's own schema: what the runtime writes, without the registry's header. */
const codec = {
  prefetch: async () => undefined,
  decode: (value: Buffer | null, schema: LoadedSchema) => {
    if (value === null) throw new Error('a null value');
    return schema.type.fromBuffer(value) as unknown;
  },
};

/**
 * Runs pipeline stages with no broker and no registry, as Kafka Streams' TopologyTestDriver does: topics in memory
 * whose values are encoded with their Avro schemas, each stage's handler called record by record in each partition's
 * order, outputs encoded and appended to their topics (a changelog's and a batched output's records as the runtime
 * writes them for a chunk of one record), failures to the stage's dead-letter topic with the reason in its headers.
 * The tables the stages read (`ctx.tables`: runs, next texts, general instructions, the pool's read-back) come from the
 * same topics, so a context built on `driver.tables` runs the stages whole. `run` hands records to the stages until
 * none has input left. For the method and the stages' logic, in milliseconds; delivery guarantees, kills and replay
 * are the real stack's tests. Keys go to partitions by a hash of their own (not Kafka's murmur2), which keeps a key's
 * records in one partition as Kafka does.
 */
export class TopologyTestDriver {
  private readonly logs = new Map<string, DriverRecord[][]>();
  private readonly followers = new Map<string, Follower[]>();
  /** Per stage and input topic, the next offset to hand it in each partition. */
  private readonly cursors = new Map<string, number[]>();
  readonly tables: Tables;

  constructor(readonly partitions = 4) {
    this.tables = sourcedTables(codec, { follow: (t) => this.followSource(t), scan: (t) => this.scanSource(t) });
  }

  /** Appends a record, encoded with the schema, to the key's partition (or the one given). */
  write(topic: string, schema: string, key: string | null, value: unknown, partition?: number, headers: Record<string, string> = {}): DriverRecord {
    return this.append(topic, key, loadSchema(schema).type.toBuffer(value), partition, headers);
  }

  /** A topic's records decoded with the schema, partition by partition in offset order. */
  read<V>(topic: string, schema: string): { key: string | null; partition: number; offset: number; value: V }[] {
    const type = loadSchema(schema).type;
    return this.records(topic).map((r) => ({ key: r.key, partition: r.partition, offset: r.offset, value: type.fromBuffer(r.value!) as V }));
  }

  /** The stage's dead letters: each input's key and the reason. */
  deadLetters(stageName: string): { key: string | null; reason: string }[] {
    return this.records(deadLetterTopic(stageName)).map((r) => ({ key: r.key, reason: r.headers[DLQ_HEADERS.reason] ?? '' }));
  }

  records(topic: string): DriverRecord[] {
    return (this.logs.get(topic) ?? []).flat();
  }

  /**
   * Hands every record of the stages' input topics to them, stage after stage in the order given, again and again
   * until no stage has a record it has not handled; returns the records handled.
   */
  async run(stages: readonly Stage<never, string>[]): Promise<number> {
    let handled = 0;
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const stage of stages) {
        for (const topic of stage.spec.input.topics) {
          const cursor = this.cursor(stage.spec.name, topic);
          const parts = this.partitionsOf(topic);
          for (let p = 0; p < parts.length; p++) {
            while (cursor[p]! < parts[p]!.length) {
              const rec = parts[p]![cursor[p]!++]!;
              await this.handle(stage, topic, rec);
              handled++;
              progressed = true;
            }
          }
        }
      }
    }
    return handled;
  }

  private async handle(stage: Stage<never, string>, topic: string, rec: DriverRecord): Promise<void> {
    const spec = stage.spec;
    const dead = (reason: string, outputs = false) =>
      this.append(deadLetterTopic(spec.name), rec.key, rec.value, undefined, { [DLQ_HEADERS.reason]: reason, [DLQ_HEADERS.processor]: spec.name, [DLQ_HEADERS.outputs]: outputs ? 'emitted' : 'none' });
    let result: HandlerResult<string>;
    try {
      const value = codec.decode(rec.value, loadSchema(spec.input.schema)) as never;
      result = await spec.handle({ key: rec.key, value, headers: {}, timestamp: '0', source: { topic, partition: rec.partition, offset: String(rec.offset) } });
    } catch (err) {
      dead((err as Error).message);
      return;
    }
    if (!Array.isArray(result) && 'skip' in result) return;
    const emits: Emit<string>[] = Array.isArray(result) ? result : result.emits;
    const encoded: { topic: string; key: string | null; value: Buffer; partition?: number; headers?: Record<string, string> }[] = [];
    const batches = new Map<string, { topic: string; schema: string; items: unknown[] }>();
    try {
      for (const e of emits) {
        const out = spec.outputs[e.to];
        if (!out) throw new Error(`the handler emitted to "${e.to}", which the stage does not declare`);
        if (out.batched) {
          const key = out.batched.key(e.key);
          const b = batches.get(`${out.topic}\u0000${key}`) ?? { topic: out.topic, schema: out.schema, items: [] };
          b.items.push(e.value);
          batches.set(`${out.topic}\u0000${key}`, b);
          continue;
        }
        encoded.push({ topic: out.topic, key: e.key, value: loadSchema(out.schema).type.toBuffer(e.value), partition: e.partition, headers: e.headers });
      }
      for (const [k, b] of batches) {
        const type = loadSchema(b.schema).type as unknown as { fields: { name: string }[]; toBuffer(v: unknown): Buffer };
        encoded.push({ topic: b.topic, key: k.slice(b.topic.length + 1), value: type.toBuffer({ [type.fields[0]!.name]: b.items }) });
      }
    } catch (err) {
      dead(`an output does not fit its schema: ${(err as Error).message}`);
      return;
    }
    for (const e of encoded) this.append(e.topic, e.key, e.value, e.partition, e.headers ?? {});
    if (!Array.isArray(result)) dead(result.deadLetter, encoded.length > 0);
    spec.checkpoint?.committed();
    // Let tables following the outputs catch up before the next record, as a stage's next batch would find them.
    await this.settle();
  }

  private append(topic: string, key: string | null, value: Buffer | null, partition: number | undefined, headers: Record<string, string>): DriverRecord {
    const parts = this.partitionsOf(topic);
    const p = partition ?? (key === null ? 0 : hashString(key) % parts.length);
    if (p < 0 || p >= parts.length) throw new Error(`${topic} has no partition ${p}`);
    const rec: DriverRecord = { key, partition: p, offset: parts[p]!.length, value, headers };
    parts[p]!.push(rec);
    for (const f of this.followers.get(topic) ?? []) this.pump(topic, f);
    return rec;
  }

  private partitionsOf(topic: string): DriverRecord[][] {
    let parts = this.logs.get(topic);
    if (!parts) this.logs.set(topic, (parts = Array.from({ length: this.partitions }, () => [])));
    return parts;
  }

  private cursor(stage: string, topic: string): number[] {
    const k = `${stage}\u0000${topic}`;
    let c = this.cursors.get(k);
    if (!c) this.cursors.set(k, (c = new Array<number>(this.partitions).fill(0)));
    return c;
  }

  private async settle(): Promise<void> {
    for (const fs of this.followers.values()) for (const f of fs) await f.pumping;
  }

  /** Hands a follower what it has not seen, one partition's new records as one batch, in order. */
  private pump(topic: string, f: Follower): void {
    f.pumping = f.pumping.then(async () => {
      const parts = this.partitionsOf(topic);
      for (let p = 0; p < parts.length; p++) {
        const from = f.delivered[p]!;
        if (from >= parts[p]!.length) continue;
        const messages = parts[p]!.slice(from);
        f.delivered[p] = parts[p]!.length;
        const last = String(parts[p]!.length - 1);
        await f.eachBatch({ partition: p, messages, lastOffset: () => last });
      }
    });
  }

  private followSource(topic: string): FollowSource {
    return {
      ends: async () => this.partitionsOf(topic).map((recs, partition) => ({ partition, low: '0', high: String(recs.length) })),
      follow: async ({ eachBatch }) => {
        const f: Follower = { delivered: new Array<number>(this.partitions).fill(0), eachBatch, pumping: Promise.resolve() };
        let list = this.followers.get(topic);
        if (!list) this.followers.set(topic, (list = []));
        list.push(f);
        this.pump(topic, f);
        return {
          stop: async () => {
            const i = list.indexOf(f);
            if (i >= 0) list.splice(i, 1);
          },
        };
      },
    };
  }

  private scanSource(topic: string): TopicSource {
    return {
      offsets: async () => this.partitionsOf(topic).map((recs, partition) => ({ partition, low: 0n, high: BigInt(recs.length) })),
      scan: async (segments: Segment[], onRecord, enough) => {
        const parts = this.partitionsOf(topic);
        for (const s of segments) {
          for (let o = Number(s.from); o < Number(s.to); o++) {
            onRecord(s.partition, BigInt(o), parts[s.partition]![o]!.value);
            if (enough()) return;
          }
        }
      },
    };
  }
}
