import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { limiter, mapOrdered } from '../../processors/runtime/concurrency.ts';
import { runtimeConfig, ConfigError } from '../../processors/runtime/runtime-config.ts';
import { deadLetterMessage, DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { defineProcessor, deadLetterTopic } from '../../processors/runtime/processor.ts';
import { loadSchema, valueSubject } from '../../processors/runtime/schemas.ts';
import { stackConfig } from '../../ops/stack/stack-config.ts';
import { kafkaProperties } from '../../ops/stack/services.ts';

describe('mapOrdered', () => {
  it('keeps order, bounds concurrency and mixes sync and async results', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapOrdered([1, 2, 3, 4, 5, 6, 7, 8], 3, (x) => {
      if (x % 2 === 0) return x * 10;
      running++;
      peak = Math.max(peak, running);
      return new Promise<number>((r) => setTimeout(() => {
        running--;
        r(x * 10);
      }, 10 - x));
    });
    expect(out).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    expect(peak).toBeLessThanOrEqual(3);
  });
});

describe('kafkajs log lines', () => {
  it('logs broker answers that kafkajs retries at debug, and real errors at error', async () => {
    const { createKafka } = await import('../../processors/runtime/kafka-client.ts');
    const seen: [string, string][] = [];
    const capture = Object.fromEntries(['error', 'warn', 'info', 'debug'].map((l) => [l, (_: object, msg: string) => void seen.push([l, msg])]));
    const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 't', logger: capture as never });
    kafka.logger().error('Response GroupCoordinator(key: 10, version: 2)', { error: 'The group coordinator is not available' });
    kafka.logger().error('Response Produce(key: 0, version: 7)', { error: 'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing' });
    kafka.logger().error('Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing', { retryCount: 0, retryTime: 20 });
    kafka.logger().error('Crash: KafkaJSNonRetriableError: The coordinator is not aware of this member', { error: 'The coordinator is not aware of this member' });
    expect(seen.map(([l]) => l)).toEqual(['debug', 'debug', 'debug', 'error']);
  });
});

describe('runtime configuration', () => {
  it('reads defaults and environment', () => {
    const cfg = runtimeConfig({ IPT_KAFKA_BROKERS: 'a:1,b:2', IPT_EXACTLY_ONCE: 'true', IPT_BATCH_SIZE: '100' });
    expect(cfg).toMatchObject({ brokers: ['a:1', 'b:2'], exactlyOnce: true, batchSize: 100, concurrency: 64 });
  });
  it('rejects bad values with the variable named', () => {
    expect(() => runtimeConfig({ IPT_KAFKA_BROKERS: 'nohost' })).toThrow(ConfigError);
    expect(() => runtimeConfig({ IPT_BATCH_SIZE: '0' })).toThrow(/IPT_BATCH_SIZE=0/);
    expect(() => runtimeConfig({ IPT_EXACTLY_ONCE: 'maybe' })).toThrow(/IPT_EXACTLY_ONCE/);
    expect(() => runtimeConfig({ IPT_REGISTRY_URL: 'not a url' })).toThrow(/IPT_REGISTRY_URL/);
    // One transactional producer cannot run two partitions' transactions at once.
    expect(() => runtimeConfig({ IPT_EXACTLY_ONCE: 'true', IPT_PARTITIONS_CONCURRENTLY: '2' })).toThrow(/IPT_PARTITIONS_CONCURRENTLY=2 with IPT_EXACTLY_ONCE/);
    expect(runtimeConfig({ IPT_PARTITIONS_CONCURRENTLY: '2' }).partitionsConsumedConcurrently).toBe(2);
    expect(() => runtimeConfig({ IPT_SESSION_TIMEOUT_MS: '1000' })).toThrow(/IPT_SESSION_TIMEOUT_MS=1000/);
  });
  it('keeps registry schemas in PostgreSQL unless told memory', () => {
    expect(stackConfig({}).registryStorage).toBe('postgresql');
    expect(stackConfig({ IPT_REGISTRY_STORAGE: 'memory' }).registryStorage).toBe('memory');
    expect(() => stackConfig({ IPT_REGISTRY_STORAGE: 'redis' })).toThrow(/IPT_REGISTRY_STORAGE/);
  });
  it('validates stack ports', () => {
    expect(stackConfig({ IPT_KAFKA_PORT: '19092' }).kafkaPort).toBe(19092);
    expect(() => stackConfig({ IPT_REGISTRY_PORT: '70000' })).toThrow(/IPT_REGISTRY_PORT/);
  });
});

describe('dead letters', () => {
  it('keep the original bytes and carry reason and source coordinates in headers', () => {
    const msg = { key: Buffer.from('k'), value: Buffer.from('v'), headers: { trace: 'x' }, timestamp: '0', attributes: 0, offset: '42' } as KafkaMessage;
    const dl = deadLetterMessage('proc', msg, { topic: 'in', partition: 3, offset: '42' }, 'handler', 'boom');
    expect(dl.key).toEqual(Buffer.from('k'));
    expect(dl.value).toEqual(Buffer.from('v'));
    expect(dl.headers).toMatchObject({ trace: 'x', [DLQ_HEADERS.reason]: 'boom', [DLQ_HEADERS.stage]: 'handler', [DLQ_HEADERS.topic]: 'in', [DLQ_HEADERS.partition]: '3', [DLQ_HEADERS.offset]: '42', [DLQ_HEADERS.processor]: 'proc' });
    expect(deadLetterTopic('templating')).toBe('templating.dlq');
  });
});

describe('processor declarations and schemas', () => {
  it('refuses names that cannot be a topic or group, and processors without input', () => {
    expect(() => defineProcessor({ name: 'bad name', input: { topics: ['a'], schema: 'raw-text' }, outputs: {}, handle: () => [] })).toThrow();
    expect(() => defineProcessor({ name: 'ok', input: { topics: [], schema: 'raw-text' }, outputs: {}, handle: () => [] })).toThrow(/no input/);
  });
  it('loads schemas from schemas/ and names subjects by topic', () => {
    const s = loadSchema('raw-text');
    expect(s.type.isValid({ id: 'a', runId: '', text: 't', source: '', ingestedAt: 0 })).toBe(true);
    expect(valueSubject('raw.texts')).toBe('raw.texts-value');
    expect(() => loadSchema('no-such-schema')).toThrow(/not found/);
  });
});

describe('native stack configuration', () => {
  it('runs Kafka in KRaft mode on loopback without auto-created topics', () => {
    const props = kafkaProperties(stackConfig({}), '/data');
    expect(props).toContain('process.roles=broker,controller');
    expect(props).toContain('listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093');
    expect(props).toContain('auto.create.topics.enable=false');
    expect(props).toContain('log.dirs=/data');
  });
});

describe('inOrder', () => {
  it('runs a step at once when none is pending, and queues the rest in submission order', async () => {
    const { inOrder } = await import('../../processors/runtime/concurrency.ts');
    const serially = inOrder();
    const seen: string[] = [];
    expect(serially(() => (seen.push('sync'), 1))).toBe(1);
    let release!: () => void;
    const slow = serially(() => new Promise<number>((r) => (release = () => (seen.push('slow'), r(2)))));
    const after = serially(() => (seen.push('after'), 3));
    const failing = serially(() => Promise.reject(new Error('no')));
    const last = serially(() => (seen.push('last'), 4));
    expect(after).toBeInstanceOf(Promise);
    release();
    expect([await slow, await after, await last]).toEqual([2, 3, 4]);
    await expect(failing).rejects.toThrow('no');
    expect(seen).toEqual(['sync', 'slow', 'after', 'last']);
    // Once everything settled, a step runs at once again.
    await new Promise((r) => setTimeout(r, 0));
    expect(serially(() => 5)).toBe(5);
  });
});

/** A serde whose topic has the schema id and writer type given, as if registered (no registry is asked). */
async function registeredSerde(topic: string, id: number, type: unknown) {
  const { AvroSerde } = await import('../../processors/runtime/serde.ts');
  const serde = new AvroSerde('http://127.0.0.1:1');
  (serde as unknown as { writerIds: Map<string, number> }).writerIds.set(topic, id);
  (serde as unknown as { writerTypes: Map<number, unknown> }).writerTypes.set(id, type);
  return serde;
}

describe('batched records', () => {
  it('inlines a record named from another schema file, so the registered text stands alone', () => {
    const batch = loadSchema('metric-event-batch');
    const text = JSON.parse(batch.text) as { fields: { type: { items: { name: string; fields: unknown[] } } }[] };
    expect(text.fields[0]!.type.items.name).toBe('MetricEvent');
    expect(text.fields[0]!.type.items.fields.length).toBe((loadSchema('metric-event').type as unknown as { fields: unknown[] }).fields.length);
  });

  it('encodeBatch writes the Avro of the batch record from its items’ bodies', async () => {
    const batch = loadSchema('metric-event-batch');
    const item = loadSchema('metric-event');
    const serde = await registeredSerde('t', 42, batch.type);
    const event = (i: number) => ({ ...(item.type.fromBuffer(item.type.toBuffer(item.type.random())) as object), id: `e${i}`, response: 'x'.repeat(i * 7) });
    for (const n of [0, 1, 63, 64, 200]) {
      const events = Array.from({ length: n }, (_, i) => event(i));
      const buf = serde.encodeBatch('t', events.map((e) => serde.encodeItem(item.type, e)));
      expect(buf.readUInt32BE(1)).toBe(42);
      expect(serde.decode(buf, batch)).toEqual({ events: events.map((e) => item.type.fromBuffer(item.type.toBuffer(e))) });
    }
  });
});

describe('decoding strings', () => {
  it('keeps a genuine U+FFFD, and refuses invalid UTF-8 or a lone surrogate in an Avro string', async () => {
    const { DecodeError } = await import('../../processors/runtime/serde.ts');
    const raw = loadSchema('raw-text');
    const serde = await registeredSerde('t', 7, raw.type);
    const record = (text: string) => ({ ...(raw.type.fromBuffer(raw.type.toBuffer(raw.type.random())) as object), id: 'a', text });
    const ok = serde.encode('t', raw, record('a \uFFFD kept \uFFFD'));
    expect((serde.decode(ok, raw) as { text: string }).text).toBe('a \uFFFD kept \uFFFD');
    const broken = serde.encode('t', raw, record('bad XX bytes'));
    broken.fill(0xff, broken.indexOf('XX'), broken.indexOf('XX') + 2);
    expect(() => serde.decode(broken, raw)).toThrow(DecodeError);
    expect(() => serde.decode(broken, raw)).toThrow('a string is not valid UTF-8');
    // A genuine U+FFFD beside invalid bytes is still caught: more replacements decoded than encoded.
    const mixed = serde.encode('t', raw, record('\uFFFD and XX'));
    mixed.fill(0xc0, mixed.indexOf('XX'), mixed.indexOf('XX') + 1);
    expect(() => serde.decode(mixed, raw)).toThrow('a string is not valid UTF-8');
    expect(() => serde.decode(serde.encode('t', raw, record('half \ud800 a pair')), raw)).toThrow('a string is not valid UTF-8');
  });

  it('looks into strings held in unions, arrays and nested records (a metric event’s sampled pairs)', async () => {
    const metric = loadSchema('metric-event');
    const serde = await registeredSerde('m', 8, metric.type);
    const base = metric.type.fromBuffer(metric.type.toBuffer(metric.type.random())) as Record<string, unknown>;
    const event = (answer: string) => ({ ...base, sample: { context: 'c', contextChars: 1, pairs: [{ question: 'q', answer: 'fine', kind: 'free' }, { question: 'q2', answer, kind: 'free' }] } });
    const kept = serde.encode('m', metric, event('genuine \uFFFD'));
    expect(((serde.decode(kept, metric) as { sample: { pairs: { answer: string }[] } }).sample.pairs[1]!.answer)).toBe('genuine \uFFFD');
    const broken = serde.encode('m', metric, event('bad XX'));
    broken.fill(0xff, broken.indexOf('XX'), broken.indexOf('XX') + 2);
    expect(() => serde.decode(broken, metric)).toThrow('a string is not valid UTF-8');
  });
  it('walks a record that holds itself (a tree of nodes) without looping', async () => {
    const { DecodeError } = await import('../../processors/runtime/serde.ts');
    const avro = (await import('avsc')).default;
    const tree = avro.Type.forSchema({ type: 'record', name: 'Node', fields: [{ name: 'name', type: 'string' }, { name: 'children', type: { type: 'array', items: 'Node' } }] });
    const serde = await registeredSerde('n', 11, tree);
    const reader = { file: 'node.avsc', text: '', type: tree };
    const value = { name: 'root \uFFFD', children: [{ name: 'leaf', children: [{ name: 'deep XX', children: [] }] }] };
    expect(serde.decode(serde.encode('n', reader, value), reader)).toEqual(value);
    const broken = serde.encode('n', reader, value);
    broken.fill(0xff, broken.indexOf('XX'), broken.indexOf('XX') + 2);
    expect(() => serde.decode(broken, reader)).toThrow(DecodeError);
  });
});

describe('encoding', () => {
  it('hands out values that stay intact however many follow, one larger than the shared buffer among them', async () => {
    const raw = loadSchema('raw-text');
    const serde = await registeredSerde('t', 9, raw.type);
    const base = raw.type.fromBuffer(raw.type.toBuffer(raw.type.random())) as object;
    const records = Array.from({ length: 400 }, (_, i) => ({ ...base, id: `r${i}`, text: (i === 150 ? 'big ' : `text ${i} `).repeat(i === 150 ? 50_000 : 20 + (i % 90)) }));
    const encoded = records.map((r) => serde.encode('t', raw, r));
    for (let i = 0; i < records.length; i++) {
      expect(encoded[i]!.readUInt32BE(1)).toBe(9);
      expect(serde.decode(encoded[i]!, raw)).toEqual(raw.type.fromBuffer(raw.type.toBuffer(records[i])));
    }
    // An item's body and a failed encode (a value that does not fit its schema) leave the values handed out alone.
    const before = Buffer.from(encoded[399]!);
    expect(() => serde.encode('t', raw, { ...base, id: 5 })).toThrow();
    serde.encodeItem(raw.type, records[0]);
    expect(encoded[399]!.equals(before)).toBe(true);
  });
});

describe('limiter', () => {
  /** Steps that record the order they started in and the most that ran at once; step `fails` throws. */
  function tracked(pause: () => Promise<unknown>, fails?: string) {
    const t = { running: 0, most: 0, started: [] as string[] };
    const step = (name: string) => async () => {
      t.started.push(name);
      t.running++;
      t.most = Math.max(t.most, t.running);
      await pause();
      t.running--;
      if (name === fails) throw new Error(`step ${name} fails`);
      return name;
    };
    return { t, step };
  }

  it('runs at most n steps at once, the others in the order they came, and frees a place when a step fails', async () => {
    const slot = limiter(2);
    const { t, step } = tracked(() => new Promise((r) => setTimeout(r, 5)), '1');
    const results = await Promise.allSettled(['0', '1', '2', '3', '4'].map((i) => slot(step(i))));
    expect(t.most).toBe(2);
    expect(t.started).toEqual(['0', '1', '2', '3', '4']);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual(['0', 'failed', '2', '3', '4']);
    expect(() => limiter(0)).toThrow(/whole number ≥ 1/);
  });

  it('hands a freed slot to the next waiter, not to a caller arriving in between', async () => {
    const slot = limiter(1);
    const { t, step } = tracked(() => Promise.resolve());
    const a = slot(step('A'));
    const b = slot(step('B'));
    // C arrives two microtasks on: just after A has finished, before B has resumed.
    const c = (async () => {
      await null;
      await null;
      return slot(step('C'));
    })();
    await Promise.all([a, b, c]);
    expect([t.most, t.started]).toEqual([1, ['A', 'B', 'C']]);
  });
});
