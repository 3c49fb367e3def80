import { ensureTopics } from '../../processors/runtime/topics.ts';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { stackConfig } from '../../ops/stack/stack-config.ts';
import { registryService } from '../../ops/stack/services.ts';
import { stopPid } from '../../ops/stack/processes.ts';
import { stackUp } from '../../ops/stack/stack.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import type { RawText } from '../../processors/pipeline/records.ts';
import { defineProcessor } from '../../processors/runtime/processor.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import { produceAll, readTopic } from '../../processors/runtime/topic-io.ts';
import { createTopics, logger, serdeFor, testConfig, testKafka, topicSize, uniq } from './helpers.ts';

let kafka: Kafka;
beforeAll(() => {
  kafka = testKafka();
});

async function seed(topic: string, n: number): Promise<void> {
  await createTopics(kafka, [topic]);
  const serde = await serdeFor([topic]);
  await produceAll(kafka, topic, rawTextMessages(serde, topic, sampleTexts(n, { runId: topic, bytes: 200 })));
}

describe('runtime operations on the real stack', () => {
  it('pauses fetching while downstream is saturated and resumes when it has room, losing nothing', async () => {
    const input = uniq('it.bp.in');
    const output = uniq('it.bp.out');
    await seed(input, 3000);
    let saturated = false;
    let release!: () => void;
    let handled = 0;
    const metrics = new ProcessorMetrics();
    const spec = defineProcessor<RawText, 'out'>({
      name: uniq('it-bp'),
      input: { topics: [input], schema: 'raw-text' },
      outputs: { out: { topic: output, schema: 'raw-text' } },
      handle: (r) => {
        // Downstream fills up after the first 1000 records.
        if (++handled === 1000) saturated = true;
        return [{ to: 'out', key: r.key, value: r.value }];
      },
      backpressure: {
        saturated: () => saturated,
        whenReady: () => new Promise<void>((r) => (release = r)),
      },
    });
    const proc = await startProcessor(spec, testConfig({ batchSize: 100 }), { logger, metrics });
    const deadline = Date.now() + 60_000;
    while (!saturated && Date.now() < deadline) await sleep(50);
    await sleep(2000);
    const pausedAt = await topicSize(kafka, output);
    const pausedGauge = (await metrics.paused.get()).values[0]?.value;
    await sleep(2000);
    expect(await topicSize(kafka, output)).toBe(pausedAt);
    expect(pausedGauge).toBe(1);
    expect(pausedAt).toBeGreaterThanOrEqual(1000);
    expect(pausedAt).toBeLessThan(3000);
    saturated = false;
    release();
    const got = await readTopic(kafka, output, { count: 3000, timeoutMs: 60_000, settleMs: 500 });
    await proc.stop();
    expect(new Set(got.messages.map((m) => m.key!.toString())).size).toBe(3000);
    expect((await metrics.paused.get()).values[0]?.value).toBe(0);
  });

  it('two processes creating the same new topics at once both return with every partition led', async () => {
    const topics = Array.from({ length: 6 }, (_, i) => uniq(`it.race.${i}`));
    const specs = topics.map((topic) => ({ topic, partitions: 4 }));
    const kafka = testKafka();
    const admins = [kafka.admin(), kafka.admin()];
    await Promise.all(admins.map((a) => a.connect()));
    try {
      await Promise.all(admins.map((a) => ensureTopics(a, specs)));
      const meta = await admins[0]!.fetchTopicMetadata({ topics });
      expect(meta.topics.flatMap((t) => t.partitions.map((p) => p.leader)).every((l) => l >= 0)).toBe(true);
      expect(meta.topics.map((t) => t.partitions.length)).toEqual(topics.map(() => 4));
    } finally {
      await Promise.all(admins.map((a) => a.disconnect()));
    }
  });

  it('serves /metrics with per-processor counts, /healthz, and /readyz once the group is joined', async () => {
    const input = uniq('it.metrics.in');
    const output = uniq('it.metrics.out');
    const name = uniq('it-metrics');
    await seed(input, 500);
    const metrics = new ProcessorMetrics();
    const proc = await startProcessor(identityProcessor({ name, input, output }), testConfig(), { logger, metrics });
    const server = await startOpsServer({ port: 0, registry: metrics.registry, readiness: [proc] });
    const addr = server.server.address();
    const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await readTopic(kafka, output, { count: 500, timeoutMs: 60_000 });
    await sleep(500);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain(`ipt_records_in_total{processor="${name}",topic="${input}"} 500`);
    expect(text).toContain(`ipt_records_out_total{processor="${name}",topic="${output}"} 500`);
    expect(text).toMatch(new RegExp(`ipt_consumer_lag\\{processor="${name}",topic="${input}",partition="0"\\} 0`));
    expect(text).toContain(`ipt_handler_latency_seconds_count{processor="${name}"} 500`);
    await proc.stop();
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    await server.close();
  });

  // The native stack's registry keeps schemas in its own PostgreSQL; the Docker path's keeps them in Kafka.
  it.runIf(inject('stack').source === 'native')('keeps schema ids across a registry restart, so records already in Kafka stay readable', async () => {
    const topic = uniq('it.durable');
    await createTopics(kafka, [topic]);
    const serde = await serdeFor([topic]);
    await produceAll(kafka, topic, rawTextMessages(serde, topic, sampleTexts(5, { runId: topic })));
    const cfg = stackConfig();
    expect(await stopPid(registryService(cfg).pidFile)).toBe(true);
    await stackUp(cfg);
    // A fresh serde knows nothing: it must fetch the writer schema by the id in each record, from the restarted registry.
    const fresh = await serdeFor([]);
    const got = await readTopic(kafka, topic, { count: 5, timeoutMs: 30_000 });
    await fresh.prefetch(got.messages.map((m) => m.value));
    const { loadSchema } = await import('../../processors/runtime/schemas.ts');
    expect(got.messages.map((m) => (fresh.decode(m.value, loadSchema('raw-text')) as RawText).id).sort()).toEqual(sampleTexts(5, { runId: topic }).map((t) => t.id));
  });
});
