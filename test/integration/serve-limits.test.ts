import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { inject } from 'vitest';
import kafkajs, { Partitioners, type Kafka } from 'kafkajs';
import type { Served } from '../../ops/server/serve.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { isolated, serveOnStack } from './pipeline-harness.ts';
import { testKafka, uniq } from './helpers.ts';

// The limits `ipt serve` runs with by default: a 64 MiB body, 1 MiB texts, 10,000 records per request.
// Not found by Node's named-export detection in kafkajs's CommonJS entry.
const { ConfigResourceTypes } = kafkajs;
const TOKEN = 'limits-token-0123456789abcdef';
const iso = isolated();
const topics = pipelineTopics(iso.prefix);
let served: Served;
let kafka: Kafka;

beforeAll(async () => {
  served = await serveOnStack(iso, { token: TOKEN, withPipeline: false, limits: { maxRecords: 10_000, maxTextBytes: 1 << 20, bodyBytes: 64 << 20 } });
  kafka = testKafka();
});
afterAll(async () => {
  await served?.close();
});

const post = (path: string, body: unknown, token: string | null = TOKEN) =>
  fetch(`${served.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
  });

interface IngestAnswer {
  accepted: number;
  ids: string[];
  rejected: { index: number; id?: string; reason: string }[];
  unknown?: { index: number; id: string; reason: string }[];
  error?: string;
}

/** The ids of a run's raw texts that Kafka holds (keys "<run>/<id>"), read to the topic's current end. */
async function storedIds(runId: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topics.raw);
  await admin.disconnect();
  const want = new Map(ends.map((o) => [o.partition, Number(o.high)]));
  const ids: string[] = [];
  if ([...want.values()].every((h) => h === 0)) return ids;
  const consumer = kafka.consumer({ groupId: uniq('it-stored'), maxBytes: 64 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.raw, fromBeginning: true });
  const read = new Map<number, number>();
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const key = m.key!.toString();
          if (key.startsWith(`${runId}/`)) ids.push(key.slice(runId.length + 1));
        }
        read.set(batch.partition, Number(batch.lastOffset()) + 1);
        if ([...want].every(([p, high]) => (read.get(p) ?? 0) >= high)) resolve();
      },
    });
  });
  try {
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`reading ${topics.raw} timed out`)), 60_000))]);
  } finally {
    await consumer.disconnect();
  }
  return ids;
}

/**
 * Sends the headers and the first `send` bytes of a body of `declared` bytes, then waits: an answer that comes while
 * the body is unfinished was given without reading (or buffering) the body.
 */
function answerWhileUploading(path: string, declared: number, send: number, headers: Record<string, string> = {}): Promise<{ status: number; connection?: string }> {
  const u = new URL(`${served.url}${path}`);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(declared), ...headers } });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to ${path} within 5 s while the body was still being sent`));
    }, 5000);
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      resolve({ status: res.statusCode!, connection: res.headers.connection });
      req.destroy();
    });
    // The server may close the connection on an unread body: that is the point.
    req.on('error', () => undefined);
    req.write(Buffer.alloc(send, 0x20));
  });
}

describe('ipt serve: limits and input handling on the real stack', () => {
  it('refuses an unauthenticated request before reading its body', async () => {
    for (const path of ['/v1/runs', '/v1/runs/any/texts', '/v1/rounds/start', '/v1/replay']) {
      const a = await answerWhileUploading(path, 60_000_000, 256 * 1024);
      expect(a.status, path).toBe(401);
      expect(a.connection, path).toBe('close');
      const b = await answerWhileUploading(path, 60_000_000, 256 * 1024, { authorization: 'Bearer wrong-token-0123456789ab' });
      expect(b.status, path).toBe(401);
    }
    // The server still answers normally afterwards.
    expect((await fetch(`${served.url}/healthz`)).status).toBe(200);
  });

  it('answers 400 naming the field for wrongly typed run, round and replay bodies, and stores nothing', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ runId: 'typed', seed: 'x' }, /seed/],
      [{ runId: 'typed', maxModelLen: '4096' }, /maxModelLen/],
      [{ runId: 'typed', lengthEstimate: 'bogus' }, /lengthEstimate.*(words|tokens)/],
      [{ runId: 'typed', preset: 'fast' }, /preset/],
      [{ runId: 'typed', convertFraction: 2 }, /convertFraction/],
      [{ runId: 'typed', temperature: -1 }, /temperature/],
      [{ runId: 'typed', rounds: 3 }, /rounds/],
      [{ runId: 'bad id' }, /runId/],
      [{ seed: 1 }, /runId/],
    ];
    for (const [body, field] of bad) {
      const res = await post('/v1/runs', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).toMatch(field);
    }
    // None of them was stored: the id is still free.
    const created = await post('/v1/runs', { runId: 'typed', seed: 3, maxModelLen: 4096, lengthEstimate: 'tokens' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ runId: 'typed', seed: 3, maxModelLen: 4096, lengthEstimate: 'tokens' });

    for (const [body, field] of [
      [{ runId: 'typed', round: '1' }, /round/],
      [{ runId: 'typed', round: -1 }, /round/],
      [{ runId: 'typed', round: 0, seed: 'x' }, /seed/],
      [{ runId: 'typed', round: 0, newRunId: 'has space' }, /newRunId/],
      [{ round: 0 }, /runId/],
    ] as [Record<string, unknown>, RegExp][]) {
      const res = await post('/v1/rounds/start', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).toMatch(field);
    }
    for (const [body, field] of [
      [{ topic: 5, from: 'earliest' }, /topic/],
      [{ topic: topics.raw, from: 0 }, /from/],
      [{ topic: topics.raw, from: 'earliest', stage: 'bogus' }, /stage/],
      [{ topic: topics.raw, from: 'earliest', extra: true }, /extra/],
    ] as [Record<string, unknown>, RegExp][]) {
      const res = await post('/v1/replay', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).toMatch(field);
    }
  });

  it('rejects lone surrogates, NUL and invalid UTF-8 on the HTTP path as the files path does', async () => {
    expect((await post('/v1/runs', { runId: 'chars' })).status).toBe(201);
    // Written by hand: JSON.stringify would escape nothing differently, but the escapes must reach the server as such.
    const body = '{"records":[{"id":"s1","text":"half \\ud800 a pair"},{"id":"s2","text":"nul \\u0000 here"},{"id":"s3","text":"a fine text \\ud83d\\ude00"},{"id":"s\\udc00","text":"an id with half a pair"},{"id":"s5","text":"fine","source":"src \\ud800"}]}';
    const res = await post('/v1/runs/chars/texts', body);
    expect(res.status).toBe(422);
    const a = (await res.json()) as IngestAnswer;
    expect(a.ids).toEqual(['s3']);
    expect(a.rejected.map((r) => r.index)).toEqual([0, 1, 3, 4]);
    expect(a.rejected[0]!.reason).toMatch(/lone surrogate \(U\+D800\)/);
    expect(a.rejected[1]!.reason).toMatch(/NUL/);
    expect(a.rejected[2]!.reason).toMatch(/"id"/);
    expect(a.rejected[3]!.reason).toMatch(/"source"/);

    for (const bytes of [
      [0xff, 0xfe],
      [0xc0, 0xaf], // an overlong "/"
      [0xed, 0xa0, 0x80], // a surrogate encoded in UTF-8
      [0xe2, 0x82], // cut short
    ]) {
      const raw = Buffer.concat([Buffer.from('{"records":[{"id":"u1","text":"bad '), Buffer.from(bytes), Buffer.from(' bytes"}]}')]);
      const r = await post('/v1/runs/chars/texts', raw);
      expect(r.status, bytes.join(',')).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/not valid UTF-8/);
    }
    expect((await storedIds('chars')).sort()).toEqual(['s3']);
  });

  it('refuses an id already ingested into the run by an earlier request, also when two requests race', async () => {
    expect((await post('/v1/runs', { runId: 'dups' })).status).toBe(201);
    expect((await post('/v1/runs/dups/texts', { records: [{ id: 'd1', text: 'The first text.' }] })).status).toBe(202);
    const again = await post('/v1/runs/dups/texts', { records: [{ id: 'd1', text: 'The first text, sent again.' }, { id: 'd2', text: 'A second text.' }] });
    expect(again.status).toBe(422);
    const a = (await again.json()) as IngestAnswer;
    expect(a.ids).toEqual(['d2']);
    expect(a.rejected).toEqual([{ index: 0, id: 'd1', reason: 'id "d1" already ingested into run "dups"' }]);

    const racing = await Promise.all([1, 2, 3].map((n) => post('/v1/runs/dups/texts', { records: [{ id: 'd3', text: `A racing text, copy ${n}.` }] })));
    expect(racing.map((r) => r.status).sort()).toEqual([202, 422, 422]);
    // Another run may use the same ids.
    expect((await post('/v1/runs', { runId: 'dups2' })).status).toBe(201);
    expect((await post('/v1/runs/dups2/texts', { records: [{ id: 'd1', text: 'The first text of another run.' }] })).status).toBe(202);
    expect((await storedIds('dups')).sort()).toEqual(['d1', 'd2', 'd3']);
  });

  it('answers the dashboard API with 400 for a repeated run and passes any run id to ClickHouse as a literal', async () => {
    const repeated = await fetch(`${served.url}/api/dashboard?run=a&run=b`);
    expect(repeated.status).toBe(400);
    expect(((await repeated.json()) as { error: string }).error).toMatch(/run/);

    // A row of another run: a run filter that leaked SQL would return it.
    const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
    try {
      await ch.command({ query: `INSERT INTO synthesis_metrics (id, run_id, round, record_id, time_ms, outcome, pairs, version) VALUES ('m1', 'other', 0, 'r1', ${Date.now()}, 'ok', 2, 1)` });
    } finally {
      await ch.close();
    }
    const all = (await (await fetch(`${served.url}/api/dashboard`)).json()) as { rounds: { run_id: string }[] };
    expect(all.rounds.map((r) => r.run_id)).toContain('other');
    for (const run of ["x' OR run_id != '", "x\\' OR 1 = 1 --", 'back\\slash\\', 'nul\u0000byte', "quote'\"both", 'éü 𝄞 \u2028 ☃', "\\'; DROP TABLE synthesis_metrics; --"]) {
      const res = await fetch(`${served.url}/api/dashboard?run=${encodeURIComponent(run)}`);
      expect(res.status, run).toBe(200);
      const d = (await res.json()) as { run: string; rounds: unknown[]; f1: unknown[]; throughput: unknown[] };
      expect(d.run, run).toBe(run);
      expect([d.rounds, d.f1, d.throughput], run).toEqual([[], [], []]);
    }
    const after = (await (await fetch(`${served.url}/api/dashboard?run=other`)).json()) as { rounds: { run_id: string }[] };
    expect(after.rounds.map((r) => r.run_id)).toEqual(['other']);
  });

  it('stores 65 texts of 1,000,000 characters sent in one request (65 MB, over the broker limit of 16 MiB), then keeps ingesting', async () => {
    expect((await post('/v1/runs', { runId: 'big' })).status).toBe(201);
    const records = Array.from({ length: 65 }, (_, i) => ({ id: `b${i}`, text: `${i} `.padEnd(1_000_000, 'abcdefghij ') }));
    const res = await post('/v1/runs/big/texts', { records });
    const a = (await res.json()) as IngestAnswer;
    expect(res.status, JSON.stringify(a).slice(0, 500)).toBe(202);
    expect(a.accepted).toBe(65);
    const next = await post('/v1/runs/big/texts', { records: [{ id: 'small', text: 'A small text after the big ones.' }] });
    expect(next.status).toBe(202);
    expect((await fetch(`${served.url}/readyz`)).status).toBe(200);
    expect((await storedIds('big')).sort()).toEqual([...records.map((r) => r.id), 'small'].sort());
  });

  it('tells the truth when the broker refuses a request, replaces the producer and reports it on /readyz, then rejects a too-large record by itself', async () => {
    expect((await post('/v1/runs', { runId: 'refused' })).status).toBe(201);
    // Keys placed as the writer places them: one record alone in one partition, four in the other.
    const partitionOf = Partitioners.DefaultPartitioner();
    const meta = [0, 1].map((partitionId) => ({ partitionId, partitionErrorCode: 0, leader: 1, replicas: [1], isr: [1] }));
    const byPartition: string[][] = [[], []];
    for (let i = 0; byPartition[0]!.length < 1 || byPartition[1]!.length < 4; i++) {
      const id = `p${i}`;
      const p = partitionOf({ topic: topics.raw, partitionMetadata: meta, message: { key: `refused/${id}`, value: null } });
      if (byPartition[p]!.length < (p === 0 ? 1 : 4)) byPartition[p]!.push(id);
    }
    const ids = [...byPartition[0]!, ...byPartition[1]!];
    const text = (id: string) => `${id} `.padEnd(30_000, 'klmnopq ');

    // An operator lowers the topic's limit under the running server: one partition's batch (120 KB) now exceeds it.
    const admin = kafka.admin();
    await admin.connect();
    const before = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.raw }] });
    const kept = before.resources[0]!.configEntries.filter((e) => !e.isDefault && e.configSource === 1).map((e) => ({ name: e.configName, value: e.configValue }));
    const setLimit = (value: string | undefined) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.raw, configEntries: [...kept.filter((e) => e.name !== 'max.message.bytes'), ...(value ? [{ name: 'max.message.bytes', value }] : [])] }],
      });
    await setLimit('65536');
    try {
      const res = await post('/v1/runs/refused/texts', { records: ids.map((id) => ({ id, text: text(id) })) });
      const a = (await res.json()) as IngestAnswer;
      expect(res.status, JSON.stringify(a)).not.toBe(500);
      expect([207, 503]).toContain(res.status);
      // Whatever Kafka holds of this batch is either reported stored or reported as of unknown outcome.
      const stored = await storedIds('refused');
      // The broker wrote the partition under its limit and refused the other: a partial write the answer must own.
      expect(stored).toEqual(byPartition[0]);
      for (const id of a.ids) expect(stored).toContain(id);
      const told = new Set([...a.ids, ...(a.unknown ?? []).map((u) => u.id)]);
      for (const id of stored) expect(told.has(id), `${id} is stored but the answer did not say so`).toBe(true);
      expect(a.ids.length + (a.unknown ?? []).length + a.rejected.length).toBe(ids.length);

      // The writer is broken until its producer is replaced: /readyz says so, then recovers.
      const ready = await fetch(`${served.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toMatch(/writer/);
      const deadline = Date.now() + 30_000;
      while ((await fetch(`${served.url}/readyz`)).status !== 200) {
        expect(Date.now(), '/readyz did not recover').toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 250));
      }

      // The same batch again, plus one record bigger than the topic now takes: that one alone is refused.
      const resend = ids.filter((id) => !stored.includes(id));
      const again = await post('/v1/runs/refused/texts', { records: [...resend.map((id) => ({ id, text: text(id) })), { id: 'huge', text: 'x'.repeat(100_000) }] });
      const b = (await again.json()) as IngestAnswer;
      expect(again.status, JSON.stringify(b)).toBe(422);
      expect(b.ids).toEqual(resend);
      expect(b.rejected).toHaveLength(1);
      expect(b.rejected[0]).toMatchObject({ index: resend.length, id: 'huge' });
      expect(b.rejected[0]!.reason).toMatch(/max\.message\.bytes/);
      expect((await storedIds('refused')).sort()).toEqual([...ids].sort());
    } finally {
      await setLimit(undefined);
      await admin.disconnect();
    }
    expect((await post('/v1/runs/refused/texts', { records: [{ id: 'last', text: 'And ingest goes on.' }] })).status).toBe(202);
  });
});
