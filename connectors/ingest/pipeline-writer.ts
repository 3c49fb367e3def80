import { Partitioners, type Admin, type Kafka, type Message, type Producer } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { hashString } from '../../processors/pretrain-text/seeded-random.ts';
import { recordKey, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { placement, type RunConfig } from '../../processors/pipeline/run-config.ts';
import type { EvaluationRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import { BATCH_OVERHEAD, DEFAULT_MAX_MESSAGE_BYTES, LIMITS_TTL_MS, messageLimits, RECORD_OVERHEAD, REQUEST_BUDGET_BYTES } from './message-limits.ts';
import type { InputText } from './run-plan.ts';

/** What became of each record given to a write, by its index there. */
export interface WriteOutcome {
  /** Acknowledged by the broker: stored. */
  stored: number[];
  /** Not sent: larger than the topic takes, or not encodable. */
  refused: { index: number; reason: string }[];
  /** In a request that failed: the broker may have stored some of them. */
  unknown: number[];
  /** Not sent because an earlier request of the same write failed. */
  unsent: number[];
  /** Why the write stopped, when it did. */
  error?: Error;
}

export class RecordTooLargeError extends Error {}

/**
 * Writes records of one schema to the pipeline's topics, keyed "<run>/<id>", every send acknowledged by all replicas.
 * Sends are split by bytes under each topic's limit. A failed send leaves the idempotent producer's sequence numbers
 * out of step with the broker (kafkajs rolls back every partition of a failed request, written or not), so the
 * producer is dropped and the next send connects a new one.
 */
export class PipelineWriter {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private started = false;
  private stopped = false;
  /** Why the last producer was dropped, until a new one is connected. */
  private dropped: string | undefined;
  /** Why the last attempt to connect a producer failed. */
  private connectError: string | undefined;
  private rawPartitions = 1;
  private readonly maxMessageBytes = new Map<string, number>();
  private limitsReadAt = 0;
  private readingLimits: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly serde: AvroSerde,
    readonly topics: PipelineTopics,
  ) {}

  private get written(): string[] {
    const t = this.topics;
    return [t.runs, t.raw, t.general, t.evalRecords, t.pool];
  }

  async start(): Promise<void> {
    const t = this.topics;
    await this.serde.registerValueSchema(t.runs, 'run-config');
    await this.serde.registerValueSchema(t.raw, 'raw-text');
    await this.serde.registerValueSchema(t.general, 'raw-text');
    await this.serde.registerValueSchema(t.evalRecords, 'evaluation-record');
    await this.serde.registerValueSchema(t.pool, 'round-collection');
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [t.raw] });
      this.rawPartitions = Math.max(1, meta.topics[0]?.partitions.length ?? 1);
      await this.readLimits(admin);
      this.limitsReadAt = Date.now();
    } finally {
      await admin.disconnect();
    }
    this.started = true;
    await this.ready();
  }

  private async readLimits(admin: Admin): Promise<void> {
    for (const [topic, v] of await messageLimits(admin, this.written)) this.maxMessageBytes.set(topic, v);
  }

  /**
   * Re-reads the limits if a minute old. Called when a record looks too large, so a limit an operator raised takes
   * effect without a restart; a lowered one shows as the broker refusing a send, after which the limits are re-read
   * with the new producer.
   */
  private refreshLimits(): Promise<void> {
    if (Date.now() - this.limitsReadAt < LIMITS_TTL_MS) return Promise.resolve();
    this.readingLimits ??= (async () => {
      const admin = this.kafka.admin();
      try {
        await admin.connect();
        await this.readLimits(admin);
      } catch {
        // The limits read last stand; a send that breaks one is refused by the broker and reported.
      } finally {
        await admin.disconnect().catch(() => undefined);
        this.limitsReadAt = Date.now();
        this.readingLimits = undefined;
      }
    })();
    return this.readingLimits;
  }

  private limitOf(topic: string): number {
    return this.maxMessageBytes.get(topic) ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** The producer, connecting a new one (and re-reading the topics' limits) when the last one was dropped. */
  private ready(): Promise<Producer> {
    if (!this.started) return Promise.reject(new Error('PipelineWriter.start() was not called'));
    if (this.stopped) return Promise.reject(new Error('PipelineWriter was stopped'));
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      if (this.dropped !== undefined) {
        // The failure may have been the broker refusing a size: take its limits as they are now.
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          await this.readLimits(admin);
          this.limitsReadAt = Date.now();
        } finally {
          await admin.disconnect();
        }
      }
      const producer = this.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      if (this.stopped) {
        await producer.disconnect();
        throw new Error('PipelineWriter was stopped');
      }
      this.producer = producer;
      this.dropped = undefined;
      this.connectError = undefined;
      return producer;
    })()
      .catch((err: Error) => {
        this.connectError = err.message;
        throw err;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  /** Drops a producer whose send failed (unless another already replaced it). */
  private drop(producer: Producer, err: Error): void {
    if (this.producer !== producer) return;
    this.producer = undefined;
    this.dropped = `the Kafka producer failed (${err.message}) and was dropped`;
    producer.disconnect().catch(() => undefined);
  }

  /** Whether records can be sent now; if not, why. */
  health(): { ready: true } | { ready: false; reason: string } {
    if (this.producer) return { ready: true };
    const why = [this.dropped, this.connectError === undefined ? undefined : `connecting a producer failed: ${this.connectError}`, this.connecting ? 'connecting a producer' : undefined];
    return { ready: false, reason: why.filter((w) => w !== undefined).join('; ') || (this.stopped ? 'stopped' : 'not started') };
  }

  /** Connects a new producer if the last one was dropped. */
  async reconnect(): Promise<void> {
    await this.ready();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.connecting?.catch(() => undefined);
    await this.producer?.disconnect();
    this.producer = undefined;
  }

  /**
   * Sends items in order, in requests of at most `chunk` records and a byte budget under the topic's limit, each
   * acknowledged before the next goes. A record too large for the topic (or not encodable) is refused and never sent;
   * the first failed request ends the write, and the rest are reported unsent. Strict: throws instead of reporting.
   */
  private async produce(topic: string, schema: string, items: readonly { key: string; value: unknown; partition?: number }[], strict: boolean, chunk = 1000): Promise<WriteOutcome> {
    const out: WriteOutcome = { stored: [], refused: [], unknown: [], unsent: [] };
    if (items.length === 0) return out;
    let producer: Producer;
    const s = loadSchema(schema);
    let limit = this.limitOf(topic);
    let budget = Math.min(REQUEST_BUDGET_BYTES, Math.floor(limit / 2));
    let batch: { index: number; message: Message }[] = [];
    let bytes = 0;
    const flush = async (): Promise<boolean> => {
      const sending = batch;
      batch = [];
      bytes = 0;
      try {
        producer = await this.ready();
      } catch (err) {
        out.unsent.push(...sending.map((b) => b.index));
        out.error = err as Error;
        return false;
      }
      try {
        await producer.send({ topic, acks: -1, messages: sending.map((b) => b.message) });
      } catch (err) {
        this.drop(producer, err as Error);
        out.unknown.push(...sending.map((b) => b.index));
        out.error = err as Error;
        return false;
      }
      out.stored.push(...sending.map((b) => b.index));
      return true;
    };
    for (let i = 0; i < items.length; i++) {
      const m = items[i]!;
      let value: Buffer;
      try {
        value = this.serde.encode(topic, s, m.value);
      } catch (err) {
        if (strict) throw err;
        out.refused.push({ index: i, reason: `not encodable as ${schema}: ${(err as Error).message}` });
        continue;
      }
      const size = value.length + Buffer.byteLength(m.key) + RECORD_OVERHEAD;
      if (size + BATCH_OVERHEAD > limit && this.started) {
        // The limit may have been raised since it was read.
        await this.refreshLimits();
        limit = this.limitOf(topic);
        budget = Math.min(REQUEST_BUDGET_BYTES, Math.floor(limit / 2));
      }
      if (size + BATCH_OVERHEAD > limit) {
        const reason = `the record is ${value.length} bytes encoded; ${topic} takes at most ${limit} bytes in a batch (max.message.bytes)`;
        if (strict) throw new RecordTooLargeError(`record ${m.key}: ${reason}`);
        out.refused.push({ index: i, reason });
        continue;
      }
      if (batch.length > 0 && (batch.length >= chunk || bytes + size > budget) && !(await flush())) {
        for (let j = i; j < items.length; j++) out.unsent.push(j);
        return out;
      }
      batch.push({ index: i, message: { key: m.key, value, partition: m.partition } });
      bytes += size;
    }
    if (batch.length > 0) await flush();
    return out;
  }

  private async send(topic: string, schema: string, items: readonly { key: string; value: unknown; partition?: number }[]): Promise<void> {
    const out = await this.produce(topic, schema, items, true);
    if (out.error) throw out.error;
  }

  writeRun(run: RunConfig): Promise<void> {
    return this.send(this.topics.runs, 'run-config', [{ key: run.runId, value: run }]);
  }

  /**
   * Raw texts in the order given. A multi-round run's converted texts are placed by position (every round's text i
   * in one partition, in round order), so the fused stage hands collections between rounds within a partition; the
   * rest go by key.
   */
  writeTexts(records: readonly RawTextRecord[], run: Pick<RunConfig, 'runId' | 'rounds' | 'roundSize'>): Promise<void> {
    return this.send(this.topics.raw, 'raw-text', this.placeTexts(records, run));
  }

  /**
   * Raw texts as writeTexts places them, reporting what became of each one instead of throwing: a text too large for
   * the topic is refused alone, and after a failed request each text is reported stored, possibly stored, or unsent.
   * Never throws.
   */
  tryWriteTexts(records: readonly RawTextRecord[], run: Pick<RunConfig, 'runId' | 'rounds' | 'roundSize'>): Promise<WriteOutcome> {
    return this.produce(this.topics.raw, 'raw-text', this.placeTexts(records, run), false);
  }

  private placeTexts(records: readonly RawTextRecord[], run: Pick<RunConfig, 'runId' | 'rounds' | 'roundSize'>) {
    const base = hashString(run.runId);
    const partitionOf = (r: RawTextRecord) => (run.rounds > 1 && r.convert && r.seq >= 0 ? (base + placement(run, r.seq).position) % this.rawPartitions : undefined);
    return records.map((r) => ({ key: recordKey(r.runId, r.id), value: r, partition: partitionOf(r) }));
  }

  /** General instructions in the order given; a run written in several calls passes one `now` to all. */
  writeGeneral(runId: string, texts: readonly InputText[], now = Date.now()): Promise<void> {
    return this.send(
      this.topics.general,
      'raw-text',
      texts.map((t) => ({ key: recordKey(runId, t.id), value: { id: t.id, runId, text: t.text, source: t.source, ingestedAt: now, seq: -1, round: 0, convert: false } })),
    );
  }

  writePool(collections: readonly RoundCollectionRecord[]): Promise<void> {
    return this.send(this.topics.pool, 'round-collection', collections.map((c) => ({ key: recordKey(c.runId, `${c.round}/${c.position}`), value: c })));
  }

  writeEvaluations(records: readonly EvaluationRecord[]): Promise<void> {
    return this.send(this.topics.evalRecords, 'evaluation-record', records.map((r) => ({ key: recordKey(r.runId, r.id), value: r })));
  }
}
