import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { AvroSerde } from './serde.ts';
import { topicEnds } from './topic-ends.ts';

/** Offsets [from, to) of one partition. */
export interface Segment {
  partition: number;
  from: bigint;
  to: bigint;
}

/**
 * Reads the given offset ranges of a topic once, with a consumer of its own that commits nothing, handing each batch's
 * records in range to `onBatch` in offset order per partition. It ends when every range is read or, checked after each
 * batch, when `enough()` says so. Committed records only (transaction markers take offsets too, so a range counts as
 * read once a batch reaches its end). A crash kafkajs does not recover from fails the scan at once.
 */
export async function scanSegments(
  kafka: Kafka,
  topic: string,
  segments: Segment[],
  onBatch: (messages: KafkaMessage[], partition: number) => void | Promise<void>,
  opts: { enough?: () => boolean; timeoutMs?: number; what?: string } = {},
): Promise<void> {
  const { enough = () => false, timeoutMs = 600_000, what = 'scan' } = opts;
  const pending = new Map(segments.filter((s) => s.to > s.from).map((s) => [s.partition, s]));
  if (pending.size === 0) return;
  const consumer = kafka.consumer({ groupId: `${topic}.${what}.${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: 500 });
  let done!: () => void;
  let failed!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  // A crash inside run() (before the seeks below) rejects this before it is awaited: the seek's error is thrown instead.
  finished.catch(() => undefined);
  let over = false;
  const finish = () => {
    if (over) return;
    over = true;
    consumer.pause([{ topic }]);
    done();
  };
  const reached = (partition: number, lastOffset: string) => {
    const s = pending.get(partition);
    if (s !== undefined && BigInt(lastOffset) + 1n >= s.to) {
      pending.delete(partition);
      consumer.pause([{ topic, partitions: [partition] }]);
    }
    if (pending.size === 0 || enough()) finish();
  };
  // A fetch that holds only transaction markers (a range read up to its last record, then the commit's marker)
  // never reaches eachBatch: kafkajs reports it in this event only, and the range may end there.
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (!over && e.payload.topic === topic && e.payload.batchSize === 0) reached(e.payload.partition, e.payload.lastOffset);
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) failed(e.payload.error);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const s = pending.get(batch.partition);
        if (s === undefined || over) return;
        try {
          // A batch fetched before the seek below took effect may start earlier: only the range counts.
          const within = batch.messages.filter((m) => BigInt(m.offset) >= s.from && BigInt(m.offset) < s.to);
          if (within.length > 0) await onBatch(within, batch.partition);
        } catch (err) {
          failed(err as Error);
          return;
        }
        reached(batch.partition, batch.lastOffset());
      },
    });
    for (const s of pending.values()) consumer.seek({ topic, partition: s.partition, offset: s.from.toString() });
    // Partitions with nothing to read are not fetched at all.
    const idle = segments.filter((s) => !pending.has(s.partition)).map((s) => s.partition);
    if (idle.length > 0) consumer.pause([{ topic, partitions: idle }]);
    const timer = setTimeout(() => failed(new Error(`reading ${topic} (${what}) took longer than ${timeoutMs} ms`)), timeoutMs);
    await finished.finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
}

/** scanSegments, record by record, with each batch's schemas fetched first (the read-back tables). */
export function scanTopic(
  kafka: Kafka,
  serde: AvroSerde,
  topic: string,
  segments: Segment[],
  onRecord: (partition: number, offset: bigint, value: Buffer | null) => void,
  enough: () => boolean = () => false,
  timeoutMs = 600_000,
): Promise<void> {
  return scanSegments(
    kafka,
    topic,
    segments,
    async (messages, partition) => {
      await serde.prefetch(messages.map((m) => m.value));
      for (const m of messages) onRecord(partition, BigInt(m.offset), m.value);
    },
    { enough, timeoutMs, what: 'read-back' },
  );
}

/** What a read-back needs of a topic: its offsets now, and a scan of ranges (in memory in unit tests). */
export interface TopicSource {
  offsets(): Promise<{ partition: number; low: bigint; high: bigint }[]>;
  scan(segments: Segment[], onRecord: (partition: number, offset: bigint, value: Buffer | null) => void, enough: () => boolean): Promise<void>;
}

export function kafkaSource(kafka: Kafka, serde: AvroSerde, topic: string): TopicSource {
  return {
    async offsets() {
      const os = await topicEnds(kafka, topic);
      return os.map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) }));
    },
    scan: (segments, onRecord, enough) => scanTopic(kafka, serde, topic, segments, onRecord, enough),
  };
}
