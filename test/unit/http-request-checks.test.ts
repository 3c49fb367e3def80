import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { createRunBody, dashboardQuery, replayBody, roundsStartBody } from '../../ops/server/request-schemas.ts';
import { describeValidationErrors } from '../../connectors/http/validation-errors.ts';
import { useStrictJson } from '../../ops/server/strict-json.ts';
import { sqlString } from '../../connectors/clickhouse/query-filters.ts';

/** The server's request checks on an app of their own: no Kafka needed to see what is refused and why. */
async function app() {
  const a = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false } }, schemaErrorFormatter: describeValidationErrors });
  useStrictJson(a);
  a.post('/runs', { schema: { body: createRunBody } }, async (req) => req.body);
  a.post('/rounds', { schema: { body: roundsStartBody } }, async (req) => req.body);
  a.post('/replay', { schema: { body: replayBody } }, async (req) => req.body);
  a.post('/any', async (req) => req.body);
  a.get('/dash', { schema: { querystring: dashboardQuery } }, async (req) => req.query);
  await a.ready();
  return a;
}

describe('HTTP request checks', () => {
  it('refuses wrongly typed, out-of-range and unknown fields with 400 naming the field; takes good bodies as sent', async () => {
    const a = await app();
    const cases: [string, unknown, string][] = [
      ['/runs', { runId: 'r', seed: 'x' }, 'body: "seed" must be integer'],
      ['/runs', { runId: 'r', maxModelLen: '4096' }, 'body: "maxModelLen" must be integer'],
      ['/runs', { runId: 'r', lengthEstimate: 'bogus' }, 'body: "lengthEstimate" must be one of words, tokens'],
      ['/runs', { runId: 'r', convertFraction: 1.5 }, 'body: "convertFraction" must be <= 1'],
      ['/runs', { runId: 'r', colour: 'red' }, 'body: unknown field "colour"'],
      ['/runs', { seed: 1 }, 'body: "runId" is required'],
      ['/runs', [], 'body: body must be object'],
      ['/rounds', { runId: 'r', round: 1.5 }, 'body: "round" must be integer'],
      ['/replay', { topic: 't', from: 'earliest', stage: 'nope' }, 'body: "stage" must be one of templating, templating-pool, synthesis, round-feedback, fused, mixing, evaluation, judge, clickhouse-sink'],
    ];
    for (const [url, payload, error] of cases) {
      const res = await a.inject({ method: 'POST', url, payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().message, JSON.stringify(payload)).toBe(error);
    }
    const good = { runId: 'r', seed: 7, maxModelLen: 4096, lengthEstimate: 'tokens', convertFraction: 0.5 };
    expect((await a.inject({ method: 'POST', url: '/runs', payload: good })).json()).toEqual(good);
    const repeated = await a.inject({ method: 'GET', url: '/dash?run=a&run=b' });
    expect(repeated.statusCode).toBe(400);
    expect(repeated.json().message).toBe('querystring: "run" must be string');
    expect((await a.inject({ method: 'GET', url: '/dash?run=a&other=1' })).json()).toEqual({ run: 'a', other: '1' });
    await a.close();
  });

  it('refuses a JSON body that is not valid UTF-8 and keeps escaped characters as sent', async () => {
    const a = await app();
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const res = await a.inject({ method: 'POST', url: '/any', headers: { 'content-type': 'application/json' }, payload: Buffer.concat([Buffer.from('{"t":"'), Buffer.from(bad), Buffer.from('"}')]) });
      expect(res.statusCode, bad.join(',')).toBe(400);
      expect(res.json().message).toBe('request body is not valid UTF-8');
    }
    const ok = await a.inject({ method: 'POST', url: '/any', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: Buffer.from('{"t":"é 𝄞 \\ud800"}') });
    expect(ok.statusCode).toBe(200);
    expect(ok.json<{ t: string }>().t).toBe('é 𝄞 \ud800');
    // Prototype poisoning is still refused, as by fastify's own parser.
    expect((await a.inject({ method: 'POST', url: '/any', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' })).statusCode).toBe(400);
    await a.close();
  });

  it('writes any string as one ClickHouse literal', () => {
    expect(sqlString("x' OR 1=1 --")).toBe("'x\\' OR 1=1 --'");
    expect(sqlString('a\\')).toBe("'a\\\\'");
    expect(sqlString('nul\u0000')).toBe("'nul\\0'");
    expect(sqlString('é𝄞')).toBe("'é𝄞'");
  });
});
