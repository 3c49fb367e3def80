import { Partitioners } from 'kafkajs';
import type { Kafka, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from './logger.ts';
import { accessDenied } from './kafka-access.ts';

/** A fetched batch's outputs on their way out: chunk by chunk, then committed together with its input offset. */
export interface BatchOutputs {
  add(topicMessages: TopicMessages[]): void;
  /** Chunks added and not committed yet. */
  inFlight(): number;
  /**
   * Every output added so far, then the input offset `next` (the next record to read). At-least-once: after the
   * outputs are acknowledged, through `commitOffset`; exactly-once: in one transaction with them.
   */
  commit(topic: string, partition: number, next: string, commitOffset: (next: string) => Promise<void>): Promise<void>;
  /** Waits out what is in flight and commits nothing (a revoked partition: its next owner re-reads it). */
  abandon(): Promise<void>;
}

/** How a processor's outputs and offsets reach Kafka: at-least-once, or exactly-once in transactions. */
export interface CommitStrategy {
  readonly exactlyOnce: boolean;
  /** Exactly-once: how many of a batch's first messages a transaction whose answer was lost committed already. */
  alreadyCommitted(topic: string, partition: number, messages: { offset: string }[]): Promise<number>;
  open(): BatchOutputs;
  disconnect(): Promise<void>;
}

interface Settings {
  kafka: Kafka;
  /** The consumer group, whose offsets are committed. */
  group: string;
  /** IPT_BATCH_SIZE: records per chunk, to count the chunks a transaction holds. */
  batchSize: number;
  logger: Logger;
}

/** Outputs are produced as chunks finish (acks=all) and the offset is committed once all are acknowledged. */
export async function atLeastOnce(s: Settings): Promise<CommitStrategy> {
  const producer = s.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  try {
    await producer.connect();
  } catch (err) {
    throw accessDenied(err, {}, s.kafka) ?? err;
  }
  return {
    exactlyOnce: false,
    alreadyCommitted: async () => 0,
    open() {
      let sends: Promise<unknown>[] = [];
      return {
        add: (topicMessages) => {
          if (topicMessages.length > 0) sends.push(producer.sendBatch({ topicMessages, acks: -1 }));
        },
        inFlight: () => sends.length,
        async commit(_topic, _partition, next, commitOffset) {
          await Promise.all(sends);
          await commitOffset(next);
          sends = [];
        },
        async abandon() {
          await Promise.allSettled(sends);
        },
      };
    },
    disconnect: () => producer.disconnect(),
  };
}

/**
 * A chunk's outputs and its offsets go into one transaction under the transactional id `<processor>-<instance>`;
 * a restarted instance with the same id fences the dead one and aborts its open transaction.
 */
export async function exactlyOnce(s: Settings & { transactionalId: string }): Promise<CommitStrategy> {
  const newProducer = (): Producer =>
    s.kafka.producer({
      transactionalId: s.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      // The broker answers CONCURRENT_TRANSACTIONS while the previous commit's markers are written; the Java
      // client retries that after ~20 ms, kafkajs's default 200 ms would stall every transaction.
      retry: { initialRetryTime: 20, maxRetryTime: 1000, retries: 10 },
    });
  let producer = newProducer();
  try {
    await producer.connect();
  } catch (err) {
    throw accessDenied(err, { transactionalId: s.transactionalId }, s.kafka) ?? err;
  }
  /**
   * A transaction that failed part-way (a broker killed during its commit) can leave kafkajs's transactional producer
   * in a state it never leaves ("Cannot call beginTransaction in state COMMITTING"). A new producer with the same
   * transactional id starts clean: initialising it fences the old one and aborts whatever it left open.
   */
  const replaceProducer = async (): Promise<void> => {
    const old = producer;
    producer = newProducer();
    await old.disconnect().catch(() => undefined);
    try {
      await producer.connect();
    } catch (err) {
      // The broker may still be down: the next transaction connects it (or fails, and the batch is retried).
      s.logger.warn({ err: (err as Error).message }, 'transactional producer not reconnected yet');
    }
  };

  /**
   * After a transaction failed, how many of the batch's first messages a transaction already committed. A commit can
   * succeed on the broker while its answer is lost (a broker killed mid-commit); the batch is then read again from the
   * consumer's position, and processing it again would write its outputs twice. Beginning (and dropping) a
   * transaction makes the coordinator settle the old one first; the group's committed offset then says where the
   * work really stands.
   */
  let failedTransactions = 0;
  const checkedAfter = new Map<string, number>();
  const alreadyCommitted = async (topic: string, partition: number, messages: { offset: string }[]): Promise<number> => {
    const key = `${topic}/${partition}`;
    if ((checkedAfter.get(key) ?? 0) >= failedTransactions) return 0;
    try {
      const probe = await producer.transaction();
      await probe.abort();
    } catch (err) {
      // The coordinator is not back yet: a clean producer for the next try; the batch is read again then.
      await replaceProducer();
      throw err;
    }
    const admin = s.kafka.admin();
    await admin.connect();
    let committed: bigint;
    try {
      const [offsets] = await admin.fetchOffsets({ groupId: s.group, topics: [topic] });
      committed = BigInt(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    } finally {
      await admin.disconnect();
    }
    checkedAfter.set(key, failedTransactions);
    let n = 0;
    while (n < messages.length && BigInt(messages[n]!.offset) < committed) n++;
    if (n > 0) s.logger.warn({ topic, partition, skipped: n, committed: committed.toString() }, 'a transaction whose answer was lost had committed these records: not processing them again');
    return n;
  };

  return {
    exactlyOnce: true,
    alreadyCommitted,
    open() {
      let txnMessages: TopicMessages[] = [];
      return {
        add: (topicMessages) => void txnMessages.push(...topicMessages),
        inFlight: () => Math.ceil(txnMessages.reduce((n, t) => n + t.messages.length, 0) / s.batchSize),
        async commit(topic, partition, next) {
          let txn: Awaited<ReturnType<Producer['transaction']>> | undefined;
          try {
            txn = await producer.transaction();
            if (txnMessages.length > 0) await txn.sendBatch({ topicMessages: txnMessages, acks: -1 });
            await txn.sendOffsets({ consumerGroupId: s.group, topics: [{ topic, partitions: [{ partition, offset: next }] }] });
            await txn.commit();
          } catch (err) {
            await txn?.abort().catch(() => undefined);
            s.logger.warn({ err: (err as Error).message }, 'transaction failed: aborted, and the batch will be read again with a new producer');
            failedTransactions++;
            await replaceProducer();
            throw err;
          }
          txnMessages = [];
        },
        // Nothing was sent: what the batch collected is dropped with it.
        abandon: async () => void (txnMessages = []),
      };
    },
    disconnect: () => producer.disconnect(),
  };
}
