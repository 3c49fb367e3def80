import { describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { ReadBackTable } from '../../processors/runtime/read-back-table.ts';
import type { Segment, TopicSource } from '../../processors/runtime/topic-scan.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';

interface Rec {
  k: string;
  n: number;
}

/** An in-memory topic: values are JSON, so the serde below decodes them without a registry. */
class MemoryTopic implements TopicSource {
  readonly parts: Rec[][];
  scans: Segment[][] = [];
  constructor(partitions: number) {
    this.parts = Array.from({ length: partitions }, () => []);
  }
  add(p: number, r: Rec): void {
    this.parts[p]!.push(r);
  }
  async offsets() {
    return this.parts.map((recs, partition) => ({ partition, low: 0n, high: BigInt(recs.length) }));
  }
  async scan(segments: Segment[], onRecord: (p: number, o: bigint, v: Buffer | null) => void, enough: () => boolean) {
    this.scans.push(segments);
    await Promise.resolve();
    for (const s of segments) {
      for (let o = s.from; o < s.to; o++) {
        onRecord(s.partition, o, Buffer.from(JSON.stringify(this.parts[s.partition]![Number(o)])));
        if (enough()) return;
      }
    }
  }
  read(): number {
    return this.scans.flat().reduce((n, s) => n + Number(s.to - s.from), 0);
  }
}

const serde = { decode: (b: Buffer | null) => JSON.parse(b!.toString()) } as unknown as AvroSerde;
const table = (topic: MemoryTopic, maxHeld: number, keyOf: (r: Rec) => string | undefined = (r) => r.k) =>
  new ReadBackTable<Rec>({} as Kafka, serde, 't', 'raw-text', keyOf, { maxHeld, source: topic, retryMs: 5 });

describe('ReadBackTable', () => {
  it('finds every key, asked in any order and again after it was taken, holding at most maxHeld', async () => {
    const topic = new MemoryTopic(3);
    for (let i = 0; i < 300; i++) topic.add(i % 3, { k: `k${i}`, n: i });
    const t = table(topic, 10);
    const order = [...Array.from({ length: 300 }, (_, i) => i), 299, 0, 150, 7, 7];
    for (const i of order) {
      expect(await t.get(`k${i}`, 1000)).toEqual({ k: `k${i}`, n: i });
      expect(t.size).toBeLessThanOrEqual(10);
    }
    // Read ahead in topic order: about one pass per maxHeld keys, not one per key.
    expect(t.passes).toBeLessThan(120);
    await t.stop();
  });

  it('reads a burst of misses in one pass', async () => {
    const topic = new MemoryTopic(2);
    for (let i = 0; i < 100; i++) topic.add(i % 2, { k: `k${i}`, n: i });
    const t = table(topic, 0);
    const got = await Promise.all([5, 50, 99, 0].map((i) => t.get(`k${i}`, 1000)));
    expect(got.map((r) => r.n)).toEqual([5, 50, 99, 0]);
    expect(t.passes).toBe(1);
    expect(t.size).toBe(0);
    await t.stop();
  });

  it('waits for a key written after it was asked for, and times out for one never written', async () => {
    const topic = new MemoryTopic(2);
    topic.add(0, { k: 'a', n: 0 });
    const t = table(topic, 5);
    const late = t.get('late', 2000);
    await new Promise((r) => setTimeout(r, 30));
    topic.add(1, { k: 'late', n: 1 });
    expect((await late).n).toBe(1);
    await expect(t.get('never', 100)).rejects.toThrow(/no record with key never in t/);
    await t.stop();
  });

  it('keeps only keyed records, and a full table of old reads makes room for what follows a new miss', async () => {
    const topic = new MemoryTopic(1);
    for (let i = 0; i < 50; i++) topic.add(0, { k: `k${i}`, n: i });
    const t = table(topic, 4, (r) => (r.n % 2 === 0 ? r.k : undefined));
    expect((await t.get('k0', 1000)).n).toBe(0);
    expect(t.size).toBe(4); // k2, k4, k6, k8 read ahead (one partition: the whole cap)
    expect((await t.get('k40', 1000)).n).toBe(40);
    // The earlier read-ahead was never asked for: replaced by what follows k40.
    expect((await t.get('k42', 1000)).n).toBe(42);
    expect(t.passes).toBe(2);
    await expect(t.get('k1', 100)).rejects.toThrow(); // not keyed: never found
    await t.stop();
  });
});
