import { beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import type { RawText } from '../../processors/pipeline/records.ts';
import { defineProcessor, deadLetterTopic } from '../../processors/runtime/processor.ts';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { IncompatibleSchemaError } from '../../processors/runtime/serde.ts';
import { produceAll, readTopic } from '../../processors/runtime/topic-io.ts';
import { createTopics, exited, logger, serdeFor, spawnIpt, testConfig, testKafka, topicSize, uniq } from './helpers.ts';

let kafka: Kafka;
beforeAll(() => {
  kafka = testKafka();
});

async function seed(topic: string, n: number, partitions = 1): Promise<RawText[]> {
  await createTopics(kafka, [topic], partitions);
  const serde = await serdeFor([topic]);
  const texts = sampleTexts(n, { runId: topic, bytes: 300 });
  await produceAll(kafka, topic, rawTextMessages(serde, topic, texts));
  return texts;
}

describe('processor runtime on the real stack', () => {
  it('carries 10,000 records through an identity processor with every id and value intact', async () => {
    const input = uniq('it.identity.in');
    const output = uniq('it.identity.out');
    const texts = await seed(input, 10_000, 3);
    const proc = await startProcessor(identityProcessor({ name: uniq('it-identity'), input, output, partitions: 3 }), testConfig(), { logger });
    const got = await readTopic(kafka, output, { count: 10_000, timeoutMs: 120_000, settleMs: 1000 });
    await proc.stop();
    expect(got.messages).toHaveLength(10_000);
    const serde = await serdeFor([output]);
    await serde.prefetch(got.messages.map((m) => m.value));
    const byId = new Map(texts.map((t) => [t.id, t]));
    const seen = new Set<string>();
    for (const m of got.messages) {
      const v = serde.decode(m.value, loadSchema('raw-text')) as RawText;
      expect(m.key?.toString()).toBe(v.id);
      // Fields added to raw-text later read back as their defaults.
      expect(v).toEqual({ seq: -1, round: 0, convert: true, ...byId.get(v.id) });
      seen.add(v.id);
    }
    expect(seen.size).toBe(10_000);
  });

  for (const exactlyOnce of [false, true]) {
    it(`loses no record when the processor is SIGKILLed mid-stream and restarted (exactly-once ${exactlyOnce ? 'on: no duplicates either' : 'off'})`, async () => {
      const n = 20_000;
      const input = uniq('it.kill.in');
      const output = uniq('it.kill.out');
      const group = uniq('it-kill');
      const texts = await seed(input, n);
      await createTopics(kafka, [output]);
      const args = ['processor', 'identity', '--input', input, '--output', output, '--name', group];
      const env = { IPT_BATCH_SIZE: '100', IPT_EXACTLY_ONCE: String(exactlyOnce), IPT_INSTANCE_ID: 'kill-test' };
      const first = spawnIpt(args, env);
      // Kill once some, but not all, output exists.
      const deadline = Date.now() + 120_000;
      while ((await topicSize(kafka, output)) < 2_000 && Date.now() < deadline) await sleep(100);
      const before = await topicSize(kafka, output);
      first.kill('SIGKILL');
      await exited(first);
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(n * 1.2);
      const second = spawnIpt(args, env);
      const got = await readTopic(kafka, output, { count: n, timeoutMs: 180_000, settleMs: 3000 });
      second.kill('SIGTERM');
      expect(await exited(second)).toBe(0);
      const ids = got.messages.map((m) => m.key!.toString());
      const unique = new Set(ids);
      expect(texts.filter((t) => !unique.has(t.id))).toEqual([]);
      if (exactlyOnce) expect(ids.length).toBe(n);
    });
  }

  it('commits the batch in flight on SIGTERM: a restart repeats nothing (at-least-once)', async () => {
    const n = 20_000;
    const input = uniq('it.term.in');
    const output = uniq('it.term.out');
    const texts = await seed(input, n, 2);
    await createTopics(kafka, [output]);
    const args = ['processor', 'identity', '--input', input, '--output', output, '--name', uniq('it-term')];
    const env = { IPT_BATCH_SIZE: '100', IPT_EXACTLY_ONCE: 'false', IPT_INSTANCE_ID: 'term-test' };
    const first = spawnIpt(args, env);
    const deadline = Date.now() + 120_000;
    while ((await topicSize(kafka, output)) < 2_000 && Date.now() < deadline) await sleep(50);
    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
    const second = spawnIpt(args, env);
    const got = await readTopic(kafka, output, { count: n, timeoutMs: 180_000, settleMs: 3000 });
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
    const ids = got.messages.map((m) => m.key!.toString());
    expect(new Set(ids).size).toBe(n);
    expect(texts.filter((t) => !ids.includes(t.id))).toEqual([]);
    // Everything the first process wrote was committed before it exited: nothing was processed twice.
    expect(ids.length).toBe(n);
  });

  it('exactly-once: a transaction that committed but whose answer was lost is not processed again', async () => {
    const input = uniq('it.lost-answer.in');
    const output = uniq('it.lost-answer.out');
    const texts = await seed(input, 2000);
    await createTopics(kafka, [output]);
    // The third commit succeeds on the broker, then its caller is told it failed (as when a broker dies before it
    // answers): the runtime must find the batch committed, not write it a second time.
    let commits = 0;
    const lostAnswer = new Proxy(kafka, {
      get(target, prop) {
        if (prop === 'producer') {
          return (opts: Parameters<Kafka['producer']>[0]) => {
            const producer = target.producer(opts);
            return new Proxy(producer, {
              get(p, k) {
                if (k !== 'transaction') return Reflect.get(p, k, p);
                return async () => {
                  const txn = await p.transaction();
                  return new Proxy(txn, {
                    get(t, m) {
                      if (m !== 'commit') return Reflect.get(t, m, t);
                      return async () => {
                        await t.commit();
                        if (++commits === 3) throw new Error('the answer to a commit that succeeded was lost');
                      };
                    },
                  });
                };
              },
            });
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const proc = await startProcessor(identityProcessor({ name: uniq('it-lost-answer'), input, output, partitions: 1 }), testConfig({ exactlyOnce: true, batchSize: 100, maxInFlightBatches: 2 }), { logger, kafka: lostAnswer });
    try {
      const got = await readTopic(kafka, output, { count: 2000, timeoutMs: 90_000, settleMs: 3000 });
      expect(commits).toBeGreaterThan(3);
      const ids = got.messages.map((m) => m.key!.toString());
      expect(new Set(ids).size).toBe(2000);
      expect(texts.filter((t) => !ids.includes(t.id))).toEqual([]);
      expect(ids.length, 'records written twice').toBe(2000);
    } finally {
      await proc.stop();
    }
  });

  it('rebuilds a consumer its group dropped, and loses nothing', async () => {
    const input = uniq('it.dropped.in');
    const output = uniq('it.dropped.out');
    const texts = await seed(input, 300);
    await createTopics(kafka, [output]);
    let blocked = false;
    const spec = defineProcessor<RawText, 'out'>({
      name: uniq('it-dropped'),
      input: { topics: [input], schema: 'raw-text' },
      outputs: { out: { topic: output, schema: 'raw-text' } },
      handle: (r) => {
        if (!blocked) {
          // A stalled process (a long GC, a blocked event loop): no heartbeat for longer than the 6 s session, so the
          // coordinator drops the member and its next commit fails; kafkajs does not restart a consumer after that.
          blocked = true;
          const until = Date.now() + 9000;
          while (Date.now() < until);
        }
        return [{ to: 'out', key: r.key, value: r.value }];
      },
    });
    const metrics = new ProcessorMetrics();
    const proc = await startProcessor(spec, testConfig({ sessionTimeoutMs: 6000, batchSize: 50 }), { logger, metrics, kafka });
    try {
      const got = await readTopic(kafka, output, { count: 300, timeoutMs: 90_000, settleMs: 500 });
      const ids = new Set(got.messages.map((m) => m.key!.toString()));
      expect(texts.filter((t) => !ids.has(t.id))).toEqual([]);
      expect((await metrics.consumerRestarts.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
      expect(proc.failure).toBeUndefined();
      expect(proc.ready()).toBe(true);
    } finally {
      await proc.stop();
    }
  });

  it('dead-letters an undecodable record and one whose handler throws, with reason and source, while the rest flow on', async () => {
    const input = uniq('it.poison.in');
    const output = uniq('it.poison.out');
    const name = uniq('it-poison');
    await createTopics(kafka, [input]);
    const serde = await serdeFor([input]);
    const good = sampleTexts(50, { runId: 'poison', bytes: 100 });
    const throwing = { ...good[10]!, id: 'throws-in-handler' };
    const messages = rawTextMessages(serde, input, [...good.slice(0, 10), throwing, ...good.slice(10)]);
    messages.splice(25, 0, { key: 'garbage', value: Buffer.from('this is not avro') });
    await produceAll(kafka, input, messages);
    const spec = defineProcessor<RawText, 'out'>({
      name,
      input: { topics: [input], schema: 'raw-text' },
      outputs: { out: { topic: output, schema: 'raw-text' } },
      handle: (r) => {
        if (r.value.id === 'throws-in-handler') throw new Error('cannot handle this text');
        return [{ to: 'out', key: r.key, value: r.value }];
      },
    });
    const proc = await startProcessor(spec, testConfig(), { logger });
    const out = await readTopic(kafka, output, { count: 50, timeoutMs: 60_000, settleMs: 500 });
    const dlq = await readTopic(kafka, deadLetterTopic(name), { count: 2, timeoutMs: 60_000, settleMs: 500 });
    await proc.stop();
    expect(out.messages.map((m) => m.key!.toString()).sort()).toEqual(good.map((g) => g.id).sort());
    expect(dlq.messages).toHaveLength(2);
    const byKey = new Map(dlq.messages.map((m) => [m.key!.toString(), m]));
    const garbage = byKey.get('garbage')!;
    expect(garbage.value!.toString()).toBe('this is not avro');
    expect(garbage.headers![DLQ_HEADERS.stage]!.toString()).toBe('decode');
    expect(garbage.headers![DLQ_HEADERS.reason]!.toString()).toMatch(/wire format/);
    expect(garbage.headers![DLQ_HEADERS.topic]!.toString()).toBe(input);
    expect(garbage.headers![DLQ_HEADERS.offset]!.toString()).toBe('25');
    const thrown = byKey.get('throws-in-handler')!;
    expect(thrown.headers![DLQ_HEADERS.stage]!.toString()).toBe('handler');
    expect(thrown.headers![DLQ_HEADERS.reason]!.toString()).toContain('cannot handle this text');
    expect(thrown.headers![DLQ_HEADERS.partition]!.toString()).toBe('0');
    expect(thrown.headers![DLQ_HEADERS.offset]!.toString()).toBe('10');
  });

  it('sends a batched output as one record per batch key and chunk, and dead-letters only the record whose item does not fit', async () => {
    const input = uniq('it.batched.in');
    const output = uniq('it.batched.out');
    const name = uniq('it-batched');
    await createTopics(kafka, [input]);
    const serde = await serdeFor([input]);
    const texts = sampleTexts(40, { runId: 'batched', bytes: 50 });
    await produceAll(kafka, input, rawTextMessages(serde, input, texts));
    const event = (id: string, runId: string) => ({ id, kind: 'synthesis', runId, recordId: id, time: 1 });
    const spec = defineProcessor<RawText, 'metrics'>({
      name,
      input: { topics: [input], schema: 'raw-text' },
      outputs: { metrics: { topic: output, schema: 'metric-event-batch', batched: { key: (k) => `run-${Number(k!.slice(-1)) % 2}` } } },
      handle: (r) => {
        // One item in forty has no `time`: it cannot be encoded.
        if (r.value.id === texts[7]!.id) return [{ to: 'metrics', key: r.key, value: { ...event(r.value.id, 'x'), time: undefined } }];
        return [{ to: 'metrics', key: r.key, value: event(r.value.id, `run-${Number(r.key!.slice(-1)) % 2}`) }];
      },
    });
    const proc = await startProcessor(spec, testConfig({ batchSize: 20 }), { logger });
    const dlq = await readTopic(kafka, deadLetterTopic(name), { count: 1, timeoutMs: 60_000, settleMs: 500 });
    const out = await readTopic(kafka, output, { timeoutMs: 3000, settleMs: 500 });
    await proc.stop();
    expect(dlq.messages.map((m) => m.key!.toString())).toEqual([texts[7]!.id]);
    expect(dlq.messages[0]!.headers![DLQ_HEADERS.stage]!.toString()).toBe('encode');
    await serde.prefetch(out.messages.map((m) => m.value));
    const events = out.messages.flatMap((m) => {
      const { events } = serde.decode(m.value, loadSchema('metric-event-batch')) as { events: { id: string; runId: string }[] };
      // Every item under its batch key.
      for (const e of events) expect(e.runId).toBe(m.key!.toString());
      return events.map((e) => e.id);
    });
    // Two chunks of twenty, two batch keys: at most four records for 39 items.
    expect(out.messages.length).toBeLessThanOrEqual(4);
    expect([...events].sort()).toEqual(texts.filter((_, i) => i !== 7).map((t) => t.id).sort());
  });

  it('refuses an incompatible schema change at start-up with a message naming the subject and the file', async () => {
    const topic = uniq('it.schema');
    await createTopics(kafka, [topic]);
    const serde = await serdeFor([topic]);
    const incompatible = 'test/fixtures/schemas/raw-text-incompatible.avsc';
    await expect(serde.registerValueSchema(topic, incompatible)).rejects.toThrow(IncompatibleSchemaError);
    await expect(serde.registerValueSchema(topic, incompatible)).rejects.toThrow(new RegExp(`${topic}-value.*BACKWARD|BACKWARD.*${topic}-value`));
    const spec = defineProcessor<RawText, 'out'>({
      name: uniq('it-schema'),
      input: { topics: [uniq('it.schema.in')], schema: 'raw-text' },
      outputs: { out: { topic, schema: incompatible } },
      handle: () => [],
    });
    await expect(startProcessor(spec, testConfig(), { logger })).rejects.toThrow(/raw-text-incompatible\.avsc is incompatible/);
  });
});

