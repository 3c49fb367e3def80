import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { CrashWindow } from './crash-window.ts';

export interface TopicReaderOptions {
  /** The consumer group's name, before a random suffix: each reader (and each rebuilt consumer) is a group of its own. */
  group: string;
  topics: string[];
  /** Handles a batch; it must be idempotent: a rebuilt consumer reads every topic again from the beginning. */
  eachBatch: (payload: EachBatchPayload) => Promise<void>;
  /** More crashes than this within `windowMs` and the reader gives up (its failure is set, onFailure is called). */
  maxRebuilds?: number;
  windowMs?: number;
  /** The first rebuild's delay; each further one within the window doubles it, up to 30 s. */
  rebuildDelayMs?: number;
  onFailure?: (err: Error) => void;
  /** Told of each crash kafkajs does not recover from, before the consumer is rebuilt. */
  onRebuild?: (err: Error, rebuilds: number) => void;
}

/**
 * A consumer that reads topics from the beginning and follows them, committing nothing (a table, a run's monitor).
 * kafkajs restarts a consumer itself after a retriable error only; after any other crash (a coordinator that no
 * longer knows the member, a broker list it could not refresh) it leaves it stopped while the process lives on — a
 * table that stops filling, a run that waits forever. Here such a consumer is rebuilt, in a fresh group, and reads
 * again from the beginning, after a pause that doubles with each crash (a failed reconnect counts as one); after
 * `maxRebuilds` (8) crashes within `windowMs` (10 minutes) — several minutes of outage — the reader gives up and says why.
 */
export class TopicReader {
  private consumer: Consumer | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private readonly crashes: CrashWindow;
  private timer: NodeJS.Timeout | undefined;
  failure: Error | undefined;
  /** Consumers rebuilt after a crash. */
  rebuilds = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly o: TopicReaderOptions,
  ) {
    this.crashes = new CrashWindow(o.maxRebuilds ?? 8, o.windowMs ?? 10 * 60_000);
  }

  start(): Promise<void> {
    this.starting = this.startConsumer();
    return this.starting;
  }

  private async startConsumer(): Promise<void> {
    const c = this.kafka.consumer({ groupId: `${this.o.group}.${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: 500 });
    c.on(c.events.CRASH, (e) => {
      if (!e.payload.restart && c === this.consumer) this.crashed(e.payload.error);
    });
    this.consumer = c;
    // stop() may come while this one connects (slowly, with the brokers down): then it must not run.
    const superseded = () => this.stopped || this.consumer !== c;
    await c.connect();
    if (superseded()) return void (await c.disconnect());
    for (const topic of this.o.topics) await c.subscribe({ topic, fromBeginning: true });
    if (superseded()) return void (await c.disconnect());
    await c.run({ autoCommit: false, eachBatch: async (p) => (superseded() ? undefined : this.o.eachBatch(p)) });
    if (superseded()) await c.disconnect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.consumer;
    this.consumer = undefined;
    await this.starting?.catch(() => undefined);
    await c?.disconnect();
  }

  private crashed(err: Error): void {
    if (this.stopped) return;
    if (this.crashes.record()) {
      this.failure = new Error(`reading ${this.o.topics.join(', ')}: the consumer ${this.crashes.describe(err)}`);
      this.o.onFailure?.(this.failure);
      return;
    }
    this.rebuilds++;
    this.o.onRebuild?.(err, this.rebuilds);
    // Backing off: a broker outage of minutes is outlasted, not counted out in seconds.
    const delay = Math.min(30_000, (this.o.rebuildDelayMs ?? 1000) * 2 ** (this.crashes.count - 1));
    const again = () => {
      if (this.stopped) return;
      this.start().catch((e: Error) => {
        // Not even running again (the brokers still down): let this one go and try again later, as after a crash.
        void this.consumer?.disconnect().catch(() => undefined);
        this.crashed(e);
      });
    };
    this.timer = setTimeout(again, delay);
  }
}
