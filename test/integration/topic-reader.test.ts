import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import kafkajs from 'kafkajs';
import { TopicReader } from '../../processors/runtime/topic-reader.ts';
import { kafkaFollowSource, TopicTable, type FollowSource } from '../../processors/runtime/topic-table.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { createTopics, serdeFor, testKafka, uniq } from './helpers.ts';

const { KafkaJSNonRetriableError } = kafkajs;

// A handler that throws a non-retriable KafkaJS error makes a crash kafkajs does not restart from: the consumer stops
// and the process lives on. These tests use it to stand for such crashes after a lost broker or coordinator (a plain
// Error is retried by kafkajs, then restarted from).
const fatal = (message: string) => new KafkaJSNonRetriableError(message);

async function seed(topic: string, n: number): Promise<AvroSerde> {
  const kafka = testKafka();
  await createTopics(kafka, [topic], 3);
  const serde = await serdeFor([topic]);
  await produceAll(kafka, topic, rawTextMessages(serde, topic, sampleTexts(n, { runId: 'reader' })));
  return serde;
}

describe('TopicReader: a consumer that crashes for good is rebuilt', () => {
  it('reads every record after a crash kafkajs does not restart from, in a new consumer, from the beginning', async () => {
    const topic = uniq('it-reader');
    await seed(topic, 30);
    const seen = new Set<string>();
    let thrown = 0;
    const rebuilt: string[] = [];
    const reader = new TopicReader(testKafka(), {
      group: `${topic}.test`,
      topics: [topic],
      rebuildDelayMs: 100,
      onRebuild: (err) => rebuilt.push(err.message),
      eachBatch: async ({ batch }) => {
        if (thrown++ === 0) throw fatal('the handler failed once');
        for (const m of batch.messages) seen.add(m.key!.toString());
      },
    });
    await reader.start();
    try {
      for (let i = 0; i < 300 && seen.size < 30; i++) await sleep(100);
      expect(seen.size).toBe(30);
      expect(reader.rebuilds).toBe(1);
      expect(rebuilt[0]).toMatch(/the handler failed once/);
      expect(reader.failure).toBeUndefined();
    } finally {
      await reader.stop();
    }
  });

  it('gives up after its rebuilds and says why; a table waiting on a key then fails instead of waiting out its timeout', async () => {
    const topic = uniq('it-reader-fail');
    const serde = await seed(topic, 5);
    let failure: Error | undefined;
    const reader = new TopicReader(testKafka(), {
      group: `${topic}.fail`,
      topics: [topic],
      maxRebuilds: 2,
      rebuildDelayMs: 100,
      onFailure: (err) => (failure = err),
      eachBatch: async () => Promise.reject(fatal('always')),
    });
    await reader.start();
    for (let i = 0; i < 300 && !failure; i++) await sleep(100);
    expect(failure?.message).toMatch(/crashed 3 times within 600 s; last: .*always/);
    expect(reader.failure).toBe(failure);
    await reader.stop();

    // The same through a table (its reader giving up sooner than the default's minutes): every batch fails before
    // it is read (the serde's prefetch throws), and a key waited for fails with the reason instead of the timeout.
    (serde as unknown as { prefetch: () => Promise<void> }).prefetch = () => Promise.reject(fatal('registry gone'));
    const kafka = testKafka();
    const source: FollowSource = {
      ...kafkaFollowSource(kafka, topic),
      async follow(o) {
        const r = new TopicReader(kafka, { group: `${topic}.table`, topics: [topic], maxRebuilds: 2, rebuildDelayMs: 100, onFailure: o.onFailure, eachBatch: ({ batch }) => o.eachBatch(batch) });
        await r.start();
        return r;
      },
    };
    const table = new TopicTable<{ id: string }>(kafka, serde, topic, 'raw-text', (r) => r.id, source);
    const started = Date.now();
    await table.start();
    await expect(table.get('no-such-key', 120_000)).rejects.toThrow(/crashed 3 times .*registry gone/);
    expect(Date.now() - started).toBeLessThan(60_000);
    await expect(table.ready(1000)).rejects.toThrow(/registry gone/);
    await table.stop();
  }, 120_000);
});
