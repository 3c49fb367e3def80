import type { Kafka } from 'kafkajs';
import type { AvroSerde } from './serde.ts';
import { loadSchema } from './schemas.ts';
import { kafkaSource, type Segment, type TopicSource } from './topic-scan.ts';

export interface ReadBackOptions {
  /** Most values held at once, read ahead of the keys asked for. */
  maxHeld?: number;
  /** First wait before a key a pass did not find is looked for again (doubling, up to 2 s). */
  retryMs?: number;
  /** Where records come from: the topic through Kafka unless given (tests read an in-memory topic). */
  source?: TopicSource;
}

interface Held<V> {
  value: V;
  partition: number;
  /** The pass that read it: a pass replaces only what earlier passes read. */
  pass: number;
}

interface Waiter<V> {
  resolve: (v: V) => void;
}

/**
 * Values read back from a topic by key, holding at most `maxHeld` of them, so that memory does not follow the topic.
 * Unlike TopicTable nothing is followed: a key asked for and not held is looked for by a pass, a one-off read of the
 * topic up to its end at the time, which starts where the previous pass stopped reading ahead on each partition and
 * goes round to that place from the beginning only for keys still not found (so every record present when it starts
 * is seen, and a `get` never misses a record in the topic). Keys asked for while a pass is under way wait for the next
 * one: a burst of misses costs one pass. After a record asked for, a pass keeps the keyed records that follow it on
 * its partition, up to the cap, because the callers ask in about the topic's order (the next position's collection,
 * the next text); what it keeps replaces what earlier passes kept and nobody asked for. A value is handed out once:
 * `get` removes it, and asked for again it is read back. A key not in the topic yet is looked for again, with a
 * growing pause, until its `get` times out.
 */
export class ReadBackTable<V, K = string> {
  private readonly held = new Map<K, Held<V>>();
  /** What is held per partition, oldest first: each partition's read-ahead has a share of the cap. */
  private readonly byPartition = new Map<number, Set<K>>();
  private readonly waiters = new Map<K, Waiter<V>[]>();
  /** Keys to look for in the next pass. */
  private queued = new Set<K>();
  /** Per partition, where reading ahead stopped: the next pass starts there. */
  private readonly resume = new Map<number, bigint>();
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private stopped = false;
  private readonly maxHeld: number;
  private readonly retryMs: number;
  private readonly source: TopicSource;
  /** Passes run and records they read, for tests and logs. */
  passes = 0;
  read = 0;

  constructor(
    kafka: Kafka | undefined,
    private readonly serde: Pick<AvroSerde, 'prefetch' | 'decode'>,
    readonly topic: string,
    private readonly schema: string,
    /** The key a record is found under; undefined for one never asked for. */
    private readonly keyOf: (value: V) => K | undefined,
    opts: ReadBackOptions = {},
  ) {
    this.maxHeld = opts.maxHeld ?? 20_000;
    if (!Number.isInteger(this.maxHeld) || this.maxHeld < 0) throw new Error(`ReadBackTable ${topic}: maxHeld must be a whole number ≥ 0 (got ${opts.maxHeld})`);
    this.retryMs = opts.retryMs ?? 100;
    this.retryDelay = this.retryMs;
    if (!opts.source && !kafka) throw new Error(`ReadBackTable ${topic}: neither a Kafka client nor a source`);
    this.source = opts.source ?? kafkaSource(kafka!, serde as AvroSerde, topic);
  }

  /** Values held now (read ahead, not yet asked for). */
  get size(): number {
    return this.held.size;
  }

  /** The value under key, handed out once, waiting up to timeoutMs for it to be read (or written). */
  get(key: K, timeoutMs: number): Promise<V> {
    const h = this.held.get(key);
    if (h) {
      this.drop(key, h);
      return Promise.resolve(h.value);
    }
    let timer!: NodeJS.Timeout;
    let waiter!: Waiter<V>;
    const found = new Promise<V>((resolve, reject) => {
      waiter = { resolve };
      timer = setTimeout(() => {
        this.forget(key, waiter);
        reject(new Error(`no record with key ${String(key)} in ${this.topic} after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    let list = this.waiters.get(key);
    if (!list) this.waiters.set(key, (list = []));
    list.push(waiter);
    this.queued.add(key);
    this.schedule();
    return found.finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.running?.catch(() => undefined);
    this.held.clear();
    this.byPartition.clear();
  }

  private forget(key: K, w: Waiter<V>): void {
    const list = this.waiters.get(key)?.filter((x) => x !== w);
    if (list?.length) this.waiters.set(key, list);
    else {
      this.waiters.delete(key);
      this.queued.delete(key);
    }
  }

  private schedule(): void {
    if (this.running || this.stopped || this.queued.size === 0) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // Started on the next turn, so the misses of one burst (many handlers at once) share the pass.
    this.running = new Promise((r) => setImmediate(r))
      .then(() => this.pass())
      .catch(() => {
        // A failed read leaves the keys waiting: they are looked for again after a pause, until their gets time out.
      })
      .finally(() => {
        this.running = undefined;
        this.afterPass();
      });
  }

  /** Keys still wanted and not found go round again: at once when new keys came in, else after a pause. */
  private afterPass(): void {
    for (const k of this.waiters.keys()) this.queued.add(k);
    if (this.queued.size === 0 || this.stopped) {
      this.retryDelay = this.retryMs;
      return;
    }
    this.retryTimer = setTimeout(() => this.schedule(), this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, 2000);
  }

  private async pass(): Promise<void> {
    const wanted = this.queued;
    this.queued = new Set();
    const pass = ++this.passes;
    const offsets = await this.source.offsets();
    const ends = new Map(offsets.map((o) => [o.partition, o.high]));
    const lows = new Map(offsets.map((o) => [o.partition, o.low]));
    const start = (p: number) => {
      const r = this.resume.get(p) ?? 0n;
      const low = lows.get(p) ?? 0n;
      return r < low || r > ends.get(p)! ? low : r;
    };
    const schema = loadSchema(this.schema);
    /** Partitions where a record asked for was found in this pass: what follows it there is kept. */
    const keeping = new Set<number>();
    const full = new Set<number>();
    const onRecord = (partition: number, offset: bigint, value: Buffer | null, ahead: boolean): void => {
      this.read++;
      let key: K | undefined;
      let v: V | undefined;
      try {
        v = this.serde.decode(value, schema) as V;
        key = this.keyOf(v);
      } catch {
        // An undecodable record cannot be asked for; the stage that wrote it dead-letters its own failures.
      }
      const ws = key === undefined ? undefined : this.waiters.get(key);
      if (ws) {
        this.waiters.delete(key!);
        wanted.delete(key!);
        this.queued.delete(key!);
        for (const w of ws) w.resolve(v!);
        if (ahead && !full.has(partition)) keeping.add(partition);
      } else if (key !== undefined && ahead && keeping.has(partition) && !full.has(partition) && !this.keep(key, v!, partition, pass, offsets.length)) {
        full.add(partition);
      }
      if (ahead && keeping.has(partition) && !full.has(partition)) this.resume.set(partition, offset + 1n);
    };
    // From where reading ahead stopped to the end, then round from the beginning for keys not found.
    const forward: Segment[] = offsets.map((o) => ({ partition: o.partition, from: start(o.partition), to: ends.get(o.partition)! }));
    await this.source.scan(forward, (p, off, val) => onRecord(p, off, val, true), () => wanted.size === 0 && this.readAheadDone(keeping, full, forward));
    if (wanted.size === 0 || this.stopped) return;
    const around: Segment[] = forward.map((s) => ({ partition: s.partition, from: lows.get(s.partition)!, to: s.from }));
    await this.source.scan(around, (p, off, val) => onRecord(p, off, val, false), () => wanted.size === 0);
  }

  /** A pass may stop early once nothing it looks for is left and it can keep nothing more. */
  private readAheadDone(keeping: Set<number>, full: Set<number>, segments: Segment[]): boolean {
    return segments.every((s) => !keeping.has(s.partition) || full.has(s.partition));
  }

  /**
   * Keeps a value read ahead on a partition, in place of the oldest one an earlier pass read there, within the
   * partition's share of the cap (a read-ahead on one partition never pushes out another's); false when full.
   */
  private keep(key: K, value: V, partition: number, pass: number, partitions: number): boolean {
    const old = this.held.get(key);
    if (old) this.drop(key, old);
    let keys = this.byPartition.get(partition);
    if (!keys) this.byPartition.set(partition, (keys = new Set()));
    const share = this.maxHeld === 0 ? 0 : Math.max(1, Math.floor(this.maxHeld / Math.max(1, partitions)));
    if (keys.size >= share) {
      const oldest = keys.values().next();
      const h = oldest.done ? undefined : this.held.get(oldest.value);
      if (!h || h.pass === pass) return false;
      this.drop(oldest.value as K, h);
    }
    this.held.set(key, { value, partition, pass });
    keys.add(key);
    return true;
  }

  private drop(key: K, h: Held<V>): void {
    this.held.delete(key);
    this.byPartition.get(h.partition)?.delete(key);
  }
}
