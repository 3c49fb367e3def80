import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import type { Kafka, KafkaMessage, Message } from 'kafkajs';
import { topicEnds } from './topic-ends.ts';
import { scanSegments } from './topic-scan.ts';

/** Produces messages in chunks with acks from all in-sync replicas. */
export async function produceAll(kafka: Kafka, topic: string, messages: Message[], chunk = 2000): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += chunk) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + chunk) });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface ReadResult {
  messages: (KafkaMessage & { partition: number })[];
  timedOut: boolean;
}

/**
 * Reads a topic from its beginning with a throw-away consumer group until `count` messages arrived, or until
 * `timeoutMs` passed (then settleMs more, to catch duplicates). Committed reads only, so aborted transactions never show.
 */
export async function readTopic(kafka: Kafka, topic: string, opts: { count?: number; timeoutMs: number; settleMs?: number }): Promise<ReadResult> {
  const consumer = kafka.consumer({ groupId: `${topic}.reader.${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024 });
  const messages: ReadResult['messages'] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) messages.push({ ...m, partition: batch.partition });
      // After the expected count, keep listening settleMs longer so that duplicates would show up too.
      if (opts.count !== undefined && messages.length >= opts.count) setTimeout(finish, opts.settleMs ?? 0);
    },
  });
  const timer = setTimeout(finish, opts.timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  return { messages, timedOut: opts.count !== undefined && messages.length < opts.count };
}

/**
 * Reads a topic from its beginning up to its end as of the call (committed records only), batch by batch, then
 * stops. A topic that does not exist reads as empty. Transaction markers take offsets too, so a partition is done
 * when the last offset seen reaches its end offset.
 */
export async function scanToEnd(
  kafka: Kafka,
  topic: string,
  onBatch: (messages: KafkaMessage[], partition: number) => void | Promise<void>,
  timeoutMs = 600_000,
  /** Records read so far of the offsets to read (a bound: transaction markers take offsets too), after each batch. */
  onProgress?: (read: number, total: number) => void,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return;
  } finally {
    await admin.disconnect();
  }
  // Records past the end as of the call are left for the next scan.
  const segments = (await topicEnds(kafka, topic)).map((o) => ({ partition: o.partition, from: BigInt(o.low), to: BigInt(o.high) }));
  if (!onProgress) return scanSegments(kafka, topic, segments, onBatch, { timeoutMs, what: 'scan' });
  const total = segments.reduce((n, s) => n + Number(s.to - s.from), 0);
  let read = 0;
  await scanSegments(
    kafka,
    topic,
    segments,
    async (messages, partition) => {
      await onBatch(messages, partition);
      read += messages.length;
      onProgress(read, total);
    },
    { timeoutMs, what: 'scan' },
  );
}
