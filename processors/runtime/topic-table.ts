import type { Kafka } from 'kafkajs';
import type { AvroSerde } from './serde.ts';
import { loadSchema } from './schemas.ts';
import { topicEnds } from './topic-ends.ts';
import { TopicReader } from './topic-reader.ts';

/** A batch of one partition's records, in offset order, as a table reads it. */
export interface FollowedBatch {
  partition: number;
  messages: { value: Buffer | null }[];
  /** The last offset the batch covers (transaction markers included). */
  lastOffset(): string;
}

/** What a table follows: a topic's offsets now, and its records from the beginning on, as they come. */
export interface FollowSource {
  ends(): Promise<{ partition: number; low: string; high: string }[]>;
  follow(o: { eachBatch: (batch: FollowedBatch) => Promise<void>; onFailure: (err: Error) => void }): Promise<{ stop(): Promise<void> }>;
}

/** The topic through Kafka: a TopicReader, rebuilt after a crash kafkajs does not recover from. */
export function kafkaFollowSource(kafka: Kafka, topic: string): FollowSource {
  return {
    ends: () => topicEnds(kafka, topic),
    async follow(o) {
      const reader = new TopicReader(kafka, { group: `${topic}.table`, topics: [topic], onFailure: o.onFailure, eachBatch: ({ batch }) => o.eachBatch(batch) });
      await reader.start();
      return reader;
    },
  };
}

/**
 * A topic read into memory and followed (a GlobalKTable in Kafka Streams' terms): every record from the beginning,
 * decoded with its schema and handed to `index`, which keeps what lookups need. It commits nothing, so each
 * process rebuilds its view from the retained topic. `get` waits for a key that has not arrived yet.
 */
export class TopicTable<V, K = string> {
  private readonly values = new Map<K, V>();
  private readonly waiters = new Map<K, { resolve: (v: V) => void; reject: (e: Error) => void }[]>();
  /** Why the table stopped following its topic (its consumer crashed past its rebuilds). */
  failure: Error | undefined;
  /** Called once, when the table gives up following its topic (whoever runs the stages reading it stops them). */
  onFailure: ((err: Error) => void) | undefined;
  private reader: { stop(): Promise<void> } | undefined;
  private caughtUp!: Promise<void>;
  /** Records read; values() holds what index() kept. */
  read = 0;

  private readonly source: FollowSource;

  constructor(
    kafka: Kafka | undefined,
    private readonly serde: Pick<AvroSerde, 'prefetch' | 'decode'>,
    readonly topic: string,
    private readonly schema: string,
    /** The key a record is kept under; undefined to drop it. A later record with the same key replaces it. */
    private readonly keyOf: (value: V) => K | undefined,
    /** Where records come from: the topic through Kafka unless given (the broker-less test driver's memory). */
    source?: FollowSource,
  ) {
    if (!source && !kafka) throw new Error(`TopicTable ${topic}: neither a Kafka client nor a source`);
    this.source = source ?? kafkaFollowSource(kafka!, topic);
  }

  async start(): Promise<void> {
    const ends = await this.source.ends();
    const pending = new Map(ends.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]));
    let markCaughtUp!: () => void;
    let failCaughtUp!: (e: Error) => void;
    this.caughtUp = new Promise((resolve, reject) => {
      markCaughtUp = resolve;
      failCaughtUp = reject;
    });
    this.caughtUp.catch(() => undefined);
    if (pending.size === 0) markCaughtUp();
    const schema = loadSchema(this.schema);
    // A consumer that crashes for good is rebuilt and reads the topic again: setting a key again is harmless.
    this.reader = await this.source.follow({
      onFailure: (err) => {
        this.failure = err;
        this.onFailure?.(err);
        for (const ws of this.waiters.values()) for (const w of ws) w.reject(err);
        this.waiters.clear();
        failCaughtUp(err);
      },
      eachBatch: async (batch) => {
        await this.serde.prefetch(batch.messages.map((m) => m.value));
        for (const m of batch.messages) {
          this.read++;
          let value: V;
          try {
            value = this.serde.decode(m.value, schema) as V;
          } catch {
            continue; // an undecodable record cannot be looked up; the stage that wrote it dead-letters its own failures
          }
          const key = this.keyOf(value);
          if (key === undefined) continue;
          this.values.set(key, value);
          const ws = this.waiters.get(key);
          if (ws) {
            this.waiters.delete(key);
            for (const w of ws) w.resolve(value);
          }
        }
        const end = pending.get(batch.partition);
        // Transaction markers take offsets too, so "caught up" is the last offset seen reaching the end offset.
        if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) {
          pending.delete(batch.partition);
          if (pending.size === 0) markCaughtUp();
        }
      },
    });
  }

  /** Resolves once every record present at start() has been read. */
  ready(timeoutMs = 60_000): Promise<void> {
    return withTimeout(this.caughtUp, timeoutMs, `reading ${this.topic} to its end took longer than ${timeoutMs} ms`);
  }

  peek(key: K): V | undefined {
    return this.values.get(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.values.entries();
  }

  /** The value under key, waiting up to timeoutMs for it to arrive. */
  get(key: K, timeoutMs: number): Promise<V> {
    const v = this.values.get(key);
    if (v !== undefined) return Promise.resolve(v);
    if (this.failure) return Promise.reject(this.failure);
    let list = this.waiters.get(key);
    if (!list) this.waiters.set(key, (list = []));
    const p = new Promise<V>((resolve, reject) => list!.push({ resolve, reject }));
    return withTimeout(p, timeoutMs, `no record with key ${String(key)} in ${this.topic} after ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await this.reader?.stop();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}
