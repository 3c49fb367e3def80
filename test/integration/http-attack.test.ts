import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { freePort } from '../fixtures/free-port.ts';
import { stackEnv } from './helpers.ts';
import { isolated } from './pipeline-harness.ts';

// `ipt serve` and `ipt serve-llm` as their own processes (so that their memory and their logs are theirs alone),
// attacked over loopback: tokens, bodies, load, paths, injection, and what leaks into logs and answers.

const TOKEN = 'attack-token-0123456789abcdef';
const KEY = 'attack-llm-key-fedcba9876543210';
const CONTEXT = 512;
const iso = isolated();

interface Server {
  child: ChildProcess;
  port: number;
  logs: () => string;
}

const children: ChildProcess[] = [];
/** Every answer either server gave, to check that none repeats a secret. */
const answers: string[] = [];

function start(args: string[], env: Record<string, string>, port: number): Server {
  const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', ...args], { env: { ...process.env, IPT_LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  return { child, port, logs: () => logs };
}

async function waitFor(s: Server, path: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null) throw new Error(`exited (${s.child.exitCode}) before answering ${path}:\n${s.logs().slice(-3000)}`);
    try {
      if ((await fetch(`http://127.0.0.1:${s.port}${path}`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(200);
  }
  throw new Error(`no answer on ${path} within 120 s:\n${s.logs().slice(-3000)}`);
}

const alive = (s: Server) => s.child.exitCode === null && s.child.signalCode === null;
const rssMb = (s: Server) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${s.child.pid}/status`, 'utf8'))![1]) / 1024);

/**
 * One request written byte for byte (paths are not normalized, headers not cleaned up, as a browser or fetch
 * would), answered on a connection of its own.
 */
function raw(s: Server, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${method} ${path.slice(0, 80)}: no answer within 60 s`));
    }, 60_000);
    sock.on('data', (d: Buffer) => chunks.push(d));
    // The server may close on an unread body: whatever it answered before that counts.
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(all)?.[1] ?? 0);
      const text = all.slice(all.indexOf('\r\n\r\n') + 4);
      answers.push(all);
      resolve({ status, body: text });
    });
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const length = body === undefined ? '' : `content-length: ${Buffer.byteLength(body)}\r\n`;
    sock.write(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${head}${length}\r\n`);
    if (body !== undefined) sock.write(body);
  });
}

/**
 * Only the headers of a request whose body is declared `bytes` long. A server that checks the length before reading
 * answers at once; one that sent its answer while a body was still arriving would close with that body unread, and
 * the kernel's reset could swallow the answer on the way.
 */
function declared(s: Server, path: string, headers: Record<string, string>, bytes: number): Promise<{ status: number; body: string }> {
  return raw(s, 'POST', path, { ...headers, 'content-length': String(bytes) });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const bearer = (t: string) => ({ ...JSON_TYPE, authorization: `Bearer ${t}` });

let serve: Server;
let llm: Server;

beforeAll(async () => {
  const [servePort, llmPort] = await Promise.all([freePort(), freePort()]);
  // The secrets come from the environment, as an operator should pass them (a flag's value is in the process list).
  serve = start(
    ['serve', '--port', String(servePort), '--prefix', iso.prefix, '--partitions', '1', '--body-bytes', String(1 << 20), '--max-text-bytes', '2000', '--lag-interval-ms', '60000'],
    { ...stackEnv(), IPT_CLICKHOUSE_DB: iso.database, IPT_API_TOKEN: TOKEN },
    servePort,
  );
  llm = start(['serve-llm', '--model', inject('smallModel'), '--port', String(llmPort), '--parallel', '4', '--context-size', String(CONTEXT)], { IPT_LLM_API_KEY: KEY }, llmPort);
  await Promise.all([waitFor(serve, '/healthz'), waitFor(llm, '/health')]);
});

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGTERM');
    const gone = await Promise.race([new Promise((r) => c.once('exit', () => r(true))), sleep(15_000).then(() => false)]);
    if (!gone) c.kill('SIGKILL');
  }
});

// Each protected route with a request that is harmless when authorized, and what it then answers.
const SERVE_ROUTES: [string, string, string | undefined, number][] = [
  ['POST', '/v1/runs', '{}', 400],
  ['POST', '/v1/runs/no-such-run/texts', '{"records":[{"text":"x"}]}', 404],
  ['POST', '/v1/rounds/start', '{}', 400],
  ['GET', '/v1/jobs/no-such-job', undefined, 404],
  ['POST', '/v1/replay', '{}', 400],
];
const LLM_ROUTES: [string, string, string | undefined, number][] = [
  ['POST', '/v1/completions', '{"prompt":"Hi","max_tokens":1,"temperature":0}', 200],
  ['POST', '/tokenize', '{"prompt":"Hi"}', 200],
  ['GET', '/v1/models', undefined, 200],
];

function refusedVariants(secret: string): [string, Record<string, string>, string][] {
  return [
    ['no header', {}, ''],
    ['a wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }, ''],
    ['a prefix of the token', { authorization: `Bearer ${secret.slice(0, 12)}` }, ''],
    ['the token minus its last character', { authorization: `Bearer ${secret.slice(0, -1)}` }, ''],
    ['the token plus a character', { authorization: `Bearer ${secret}x` }, ''],
    ['the token in ?token=', {}, `?token=${secret}`],
    ['the token in ?access_token=', {}, `?access_token=${encodeURIComponent(secret)}`],
    ['the token in ?api_key=', {}, `?api_key=${secret}`],
    ['the token with no scheme', { authorization: secret }, ''],
    ['a tab after the scheme', { authorization: `Bearer\t${secret}` }, ''],
    ['the token twice', { authorization: `Bearer ${secret} ${secret}` }, ''],
    ['Basic with the token as password', { authorization: `Basic ${Buffer.from(`user:${secret}`).toString('base64')}` }, ''],
    ['an empty bearer', { authorization: 'Bearer ' }, ''],
  ];
}
const acceptedVariants = (secret: string): [string, Record<string, string>][] => [
  ['Bearer', { authorization: `Bearer ${secret}` }],
  ['lowercase bearer', { authorization: `bearer ${secret}` }],
  ['extra spaces after the scheme', { authorization: `Bearer    ${secret}` }],
];

describe('tokens on every protected route', () => {
  it('ipt serve: only the token in the Authorization header opens ingest and control', async () => {
    for (const [method, path, body, ok] of SERVE_ROUTES) {
      for (const [what, headers, query] of refusedVariants(TOKEN)) {
        const r = await raw(serve, method, path + query, { ...JSON_TYPE, ...headers }, body);
        expect(r.status, `${method} ${path} with ${what}`).toBe(401);
        expect(r.body).toMatch(/missing or wrong bearer token/);
      }
      for (const [what, headers] of acceptedVariants(TOKEN)) {
        expect((await raw(serve, method, path, { ...JSON_TYPE, ...headers }, body)).status, `${method} ${path} with ${what}`).toBe(ok);
      }
    }
    // Health, metrics and the dashboard take no token, by design.
    for (const p of ['/healthz', '/readyz', '/metrics', '/', '/api/dashboard']) expect((await raw(serve, 'GET', p)).status, p).toBe(200);
  });

  it('ipt serve-llm with IPT_LLM_API_KEY: every route but /health needs the key', async () => {
    expect(llm.logs()).toMatch(/on http:\/\/127\.0\.0\.1:\d+\/v1 .*API key: required/);
    for (const [method, path, body, ok] of LLM_ROUTES) {
      for (const [what, headers, query] of refusedVariants(KEY)) {
        const r = await raw(llm, method, path + query, { ...JSON_TYPE, ...headers }, body);
        expect(r.status, `${method} ${path} with ${what}`).toBe(401);
      }
      for (const [what, headers] of acceptedVariants(KEY)) {
        expect((await raw(llm, method, path, { ...JSON_TYPE, ...headers }, body)).status, `${method} ${path} with ${what}`).toBe(ok);
      }
    }
    expect((await raw(llm, 'GET', '/health')).status).toBe(200);
  });
});

describe('bodies', () => {
  it('ipt serve: wrong types, non-object JSON, 100,000 levels of nesting and oversized bodies get a 4xx', async () => {
    expect((await raw(serve, 'POST', '/v1/runs', bearer(TOKEN), '{"runId":"bodies"}')).status).toBe(201);
    const deepArray = '['.repeat(100_000) + ']'.repeat(100_000);
    const deepObject = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    const cases: [string, Record<string, string>, string, number, number][] = [
      ['text/plain', { 'content-type': 'text/plain' }, '{"runId":"tp"}', 400, 400],
      ['no content type', {}, '{"runId":"nc"}', 415, 415],
      ['a form', { 'content-type': 'application/x-www-form-urlencoded' }, 'runId=f', 415, 415],
      ['a JSON array', JSON_TYPE, '[]', 400, 400],
      ['a JSON string', JSON_TYPE, '"records"', 400, 400],
      ['JSON null', JSON_TYPE, 'null', 400, 400],
      ['truncated JSON', JSON_TYPE, '{"records": [', 400, 400],
      ['100,000 nested arrays', JSON_TYPE, deepArray, 400, 400],
      ['100,000 nested objects', JSON_TYPE, deepObject, 400, 400],
      ['records nested 100,000 deep', JSON_TYPE, `{"records":${deepArray}}`, 400, 422],
    ];
    for (const [what, type, body, runs, texts] of cases) {
      const headers = { authorization: `Bearer ${TOKEN}`, ...type };
      expect((await raw(serve, 'POST', '/v1/runs', headers, body)).status, `/v1/runs with ${what}`).toBe(runs);
      expect((await raw(serve, 'POST', '/v1/runs/bodies/texts', headers, body)).status, `/v1/runs/bodies/texts with ${what}`).toBe(texts);
    }
    for (const path of ['/v1/runs', '/v1/runs/bodies/texts', '/v1/rounds/start', '/v1/replay']) {
      const r = await declared(serve, path, bearer(TOKEN), (1 << 20) + 1);
      expect(r.status, `${path} over the 1 MiB body limit`).toBe(413);
    }
    const long = await raw(serve, 'POST', '/v1/runs/bodies/texts', bearer(TOKEN), JSON.stringify({ records: [{ id: 'long', text: 'y'.repeat(3000) }, { id: 'fine', text: 'A fine text.' }] }));
    expect(long.status).toBe(422);
    expect(JSON.parse(long.body)).toMatchObject({ ids: ['fine'], rejected: [{ index: 0, id: 'long', reason: expect.stringMatching(/3000 bytes; at most 2000/) }] });
    expect(alive(serve)).toBe(true);
    expect((await raw(serve, 'GET', '/healthz')).status).toBe(200);
  });

  it('ipt serve-llm: malformed or mistyped fields get 400 (they used to crash the server), long prompts 400 at once, oversized bodies 413', async () => {
    const auth = bearer(KEY);
    const cases: [string, string | object, RegExp][] = [
      ['JSON null', 'null', /body must be object/],
      ['a JSON array', '[]', /body must be object/],
      ['a JSON string', '"Hi"', /body must be object/],
      ['100,000 nested arrays', '['.repeat(100_000) + ']'.repeat(100_000), /body must be object/],
      ['stop nested 1,000 deep', `{"prompt":"Hi","stop":${'['.repeat(1000)}${']'.repeat(1000)}}`, /"stop" must be a string or an array of strings/],
      ['no prompt', { max_tokens: 1 }, /"prompt" is required/],
      ['a number prompt', { prompt: 5 }, /"prompt" must be a string or an array of strings/],
      ['a string temperature', { prompt: 'Hi', max_tokens: 1, temperature: 'hot' }, /"temperature" must be number/],
      ['a negative temperature', { prompt: 'Hi', max_tokens: 1, temperature: -1 }, /"temperature" must be >= 0/],
      ['a string repeat_penalty', { prompt: 'Hi', max_tokens: 1, repeat_penalty: 'x' }, /"repeat_penalty" must be number/],
      ['a string max_tokens', { prompt: 'Hi', max_tokens: '2' }, /"max_tokens" must be integer/],
      ['numbers as stop strings', { prompt: 'Hi', max_tokens: 1, stop: [5] }, /"stop" must be a string or an array of strings/],
      ['an object grammar', { prompt: 'Hi', max_tokens: 1, grammar: { root: 1 } }, /"grammar" must be string/],
      ['a grammar that does not parse', { prompt: 'Hi', max_tokens: 1, grammar: 'root ::= (' }, /not a valid GBNF grammar/],
      ['an object model', { prompt: 'Hi', max_tokens: 1, model: { a: 1 } }, /"model" must be string/],
      ['stream: true', { prompt: 'Hi', max_tokens: 1, stream: true }, /"stream"/],
      ['max_tokens past the context', { prompt: 'Hi', max_tokens: 1e9 }, /exceeds the context of 512 tokens/],
      ['a prompt longer than the context', { prompt: 'word '.repeat(2000), max_tokens: 4 }, /2001 tokens .*exceeds the context of 512 tokens/],
      ['more prompts than the queue holds', { prompt: Array.from({ length: 5000 }, () => 'Hi'), max_tokens: 1 }, /5000 prompts in one request; at most 4096/],
      ['one prompt of an array longer than the context', { prompt: ['Hi', 'word '.repeat(100_000)], max_tokens: 4 }, /prompt 1 of 500000 bytes .*exceeds the context/],
    ];
    for (const [what, body, message] of cases) {
      const r = await raw(llm, 'POST', '/v1/completions', auth, typeof body === 'string' ? body : JSON.stringify(body));
      expect(r.status, what).toBe(400);
      expect(JSON.parse(r.body).error.message, what).toMatch(message);
      expect(alive(llm), `the server survives ${what}`).toBe(true);
    }
    expect((await raw(llm, 'POST', '/v1/completions', { authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' }, '{"prompt":"Hi"}')).status).toBe(400);
    expect((await raw(llm, 'POST', '/v1/completions', { authorization: `Bearer ${KEY}` }, '{"prompt":"Hi"}')).status).toBe(415);
    for (const body of ['null', '{"prompt":5}', '{"content":["x"]}']) expect((await raw(llm, 'POST', '/tokenize', auth, body)).status, body).toBe(400);

    // 20 MB of prompt: refused from its length without tokenizing it (which took seconds with the server deaf).
    const started = Date.now();
    const huge = raw(llm, 'POST', '/v1/completions', auth, JSON.stringify({ prompt: 'lorem ipsum dolor sit amet '.repeat(770_000), max_tokens: 4 }));
    const health = await raw(llm, 'GET', '/health');
    expect(health.status).toBe(200);
    const h = await huge;
    expect(h.status).toBe(400);
    expect(JSON.parse(h.body).error.message).toMatch(/at least \d+ tokens.*exceeds the context of 512 tokens/);
    expect(Date.now() - started).toBeLessThan(10_000);
    // Over the 64 MiB body limit.
    expect((await declared(llm, '/v1/completions', auth, (64 << 20) + 1)).status).toBe(413);
    expect((await declared(llm, '/tokenize', auth, (64 << 20) + 1)).status).toBe(413);
    // And it still completes.
    const ok = await raw(llm, 'POST', '/v1/completions', auth, JSON.stringify({ prompt: 'The capital of France is', max_tokens: 2, temperature: 0 }));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).choices).toHaveLength(1);
  });
});

describe('200 concurrent requests', () => {
  it('ipt serve: every ingest and dashboard request is answered, and the server is fine afterwards', async () => {
    const url = `http://127.0.0.1:${serve.port}`;
    expect((await raw(serve, 'POST', '/v1/runs', bearer(TOKEN), '{"runId":"crowd"}')).status).toBe(201);
    const before = rssMb(serve);
    const ingest = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${url}/v1/runs/crowd/texts`, {
          method: 'POST',
          headers: bearer(TOKEN),
          body: JSON.stringify({ records: Array.from({ length: 5 }, (_, j) => ({ id: `c${i}-${j}`, text: `Text ${i}.${j} about rivers, deltas and the sea.` })) }),
          signal: AbortSignal.timeout(60_000),
        }).then((r) => r.status),
      ),
    );
    const dashboard = await Promise.all(Array.from({ length: 200 }, (_, i) => fetch(`${url}/api/dashboard?run=r${i}`, { signal: AbortSignal.timeout(60_000) }).then((r) => r.status)));
    const after = rssMb(serve);
    console.log(`[http-attack] ipt serve RSS ${before} MB before, ${after} MB after 200 ingest + 200 dashboard requests`);
    expect(ingest.every((s) => s === 202 || s === 429 || s === 503), JSON.stringify(ingest)).toBe(true);
    expect(ingest.filter((s) => s === 202).length).toBeGreaterThan(0);
    expect(dashboard.every((s) => s === 200 || s === 429 || s === 503), JSON.stringify(dashboard)).toBe(true);
    expect(after - before).toBeLessThan(300);
    expect((await raw(serve, 'GET', '/healthz')).status).toBe(200);
    expect((await raw(serve, 'GET', '/readyz')).status).toBe(200);
  });

  it('ipt serve-llm: 200 completions at once are all answered, and /health is fine afterwards', async () => {
    const url = `http://127.0.0.1:${llm.port}`;
    const before = rssMb(llm);
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${url}/v1/completions`, { method: 'POST', headers: bearer(KEY), body: JSON.stringify({ prompt: `Count: ${i},`, max_tokens: 2, temperature: 0 }), signal: AbortSignal.timeout(180_000) }).then((r) => r.status),
      ),
    );
    const after = rssMb(llm);
    console.log(`[http-attack] ipt serve-llm RSS ${before} MB before, ${after} MB after 200 completions (${Date.now() - started} ms)`);
    expect(statuses.every((s) => s === 200 || s === 429), JSON.stringify(statuses)).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(after - before).toBeLessThan(300);
    const health = await raw(llm, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ busy: 0, waiting: 0 });
  });
});

describe('paths', () => {
  it('ipt serve: only the declared files are served, however the path is spelt', async () => {
    expect((await raw(serve, 'GET', '/')).body).toMatch(/<html/i);
    expect((await raw(serve, 'GET', '/assets/chart.umd.min.js')).body).toMatch(/Chart/);
    for (const p of [
      '/../package.json',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/assets/../../..',
      '/assets/../../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/%252e%252e/%252e%252e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/assets/..%5c..%5cpackage.json',
      '/assets\\..\\..\\package.json',
      '/assets/..\\..\\package.json',
      '/assets/chart.umd.min.js/../../package.json',
      '/assets/chart.umd.min.js%00.html',
      '/assets/dashboard.html',
      '/dashboard.html',
      '/ops/server/dashboard.html',
      '//etc/passwd',
      '/.stack/',
      '/node_modules/chart.js/package.json',
    ]) {
      const r = await raw(serve, 'GET', p);
      expect(r.status, p).toBe(404);
      // Neither a package.json, nor /etc/passwd, nor Chart.js's source.
      expect(r.body, p).not.toMatch(/"name"\s*:|root:|\/\*!/);
    }
    expect(alive(serve)).toBe(true);
  });
});

describe('injection through query and path parameters', () => {
  it('ipt serve: quotes, backslashes, NUL, Unicode, long strings and SQL in any parameter: 200, 400 or 404, never 500, never another run', async () => {
    // A row of another run: a run filter that leaked SQL would return it.
    const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
    try {
      await ch.command({ query: `INSERT INTO synthesis_metrics (id, run_id, round, record_id, time_ms, outcome, pairs, version) VALUES ('m1', 'other', 0, 'r1', ${Date.now()}, 'ok', 2, 1)` });
    } finally {
      await ch.close();
    }
    const nasty = [
      "x' OR run_id != '",
      "x\\' OR 1 = 1 --",
      "x') OR ('1'='1",
      'back\\slash\\',
      'nul\u0000byte',
      "quote'\"both",
      'é ü 𝄞 \u2028 ☃ \u202e',
      "'; DROP TABLE synthesis_metrics; --",
      "x' UNION ALL SELECT * FROM round_aggregates --",
      '{run:String}',
      "x'".repeat(512),
    ];
    const dashboard = (run: string) => raw(serve, 'GET', `/api/dashboard?run=${encodeURIComponent(run)}`);
    for (const run of nasty) {
      const r = await dashboard(run);
      expect(r.status, run).toBe(200);
      const d = JSON.parse(r.body) as { run: string; rounds: unknown[]; f1: unknown[]; throughput: unknown[] };
      expect(d.run, run).toBe(run);
      expect([d.rounds, d.f1, d.throughput], run).toEqual([[], [], []]);
    }
    expect((await dashboard('x'.repeat(1025))).status).toBe(400);
    expect((await raw(serve, 'GET', `/api/dashboard?run=${'x'.repeat(10_000)}`)).status).toBe(400);
    // Past Node's 16 KiB of request head.
    expect((await raw(serve, 'GET', `/api/dashboard?run=${'x'.repeat(100_000)}`)).status).toBe(431);
    expect((await raw(serve, 'GET', '/api/dashboard?run=a&run=b')).status).toBe(400);
    const other = JSON.parse((await dashboard('other')).body) as { rounds: { run_id: string }[] };
    expect(other.rounds.map((r) => r.run_id)).toEqual(['other']);

    // Path parameters: an open run exists; nothing aimed elsewhere may reach it.
    expect((await raw(serve, 'POST', '/v1/runs', bearer(TOKEN), '{"runId":"target"}')).status).toBe(201);
    const record = '{"records":[{"id":"sneaked","text":"Should not be stored."}]}';
    const segments = [...nasty.map(encodeURIComponent), '%00', '%E0%A4%A', '%', '..%2Ftarget', 'target%2F..%2Ftarget', 'target%00', 'target%20', 'TARGET', '__proto__', 'constructor', 'x'.repeat(1025), 'x'.repeat(100_000)];
    for (const seg of segments) {
      // Past Node's 16 KiB header limit the server answers 431 and closes while the request is still arriving; the
      // kernel's reset can then swallow that answer (status 0 here). Either way nothing reaches a handler.
      const allowed = seg.length > 16_384 ? [0, 431] : [400, 404, 414, 431];
      const texts = await raw(serve, 'POST', `/v1/runs/${seg}/texts`, bearer(TOKEN), record);
      expect(allowed, `texts ${seg.slice(0, 60)}: ${texts.body.slice(0, 200)}`).toContain(texts.status);
      const job = await raw(serve, 'GET', `/v1/jobs/${seg}`, bearer(TOKEN));
      expect(allowed, `jobs ${seg.slice(0, 60)}: ${job.body.slice(0, 200)}`).toContain(job.status);
    }
    // The sneaked record reached no run: sending it to the target now is its first arrival.
    const first = await raw(serve, 'POST', '/v1/runs/target/texts', bearer(TOKEN), record);
    expect(first.status).toBe(202);
    // The longest run id POST /v1/runs takes can be ingested into (the router refused ids over 100 characters).
    const longId = 'L'.repeat(128);
    expect((await raw(serve, 'POST', '/v1/runs', bearer(TOKEN), JSON.stringify({ runId: longId }))).status).toBe(201);
    expect((await raw(serve, 'POST', `/v1/runs/${longId}/texts`, bearer(TOKEN), '{"records":[{"text":"A text for the long run."}]}')).status).toBe(202);
    expect(alive(serve)).toBe(true);
  });
});

describe('secrets', () => {
  it('neither server repeats its token in an answer', async () => {
    // Fastify's own 404 repeated the URL, query string and all.
    const serve404 = await raw(serve, 'GET', `/nope?token=${TOKEN}&access_token=${TOKEN}`);
    expect(serve404.status).toBe(404);
    const llm404 = await raw(llm, 'GET', `/nope?api_key=${KEY}`, { authorization: `Bearer ${KEY}` });
    expect(llm404.status).toBe(404);
    expect(answers.length).toBeGreaterThan(100);
    for (const a of answers) {
      expect(a.includes(TOKEN), a.slice(0, 300)).toBe(false);
      expect(a.includes(KEY), a.slice(0, 300)).toBe(false);
    }
  });

  it('neither server logs its token or an Authorization header, after failing and succeeding requests at debug level', () => {
    for (const [name, s] of [
      ['serve', serve],
      ['serve-llm', llm],
    ] as const) {
      const logs = s.logs();
      expect(logs.length, name).toBeGreaterThan(0);
      expect(logs.includes(TOKEN), `${name} logged the serve token`).toBe(false);
      expect(logs.includes(KEY), `${name} logged the LLM key`).toBe(false);
      expect(logs, name).not.toMatch(/authorization|Bearer \S/i);
    }
  });
});

describe('who can reach them', () => {
  /** The addresses a process listens on for this port, from /proc/net (IPv4 and IPv6). */
  function listening(port: number): string[] {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const out: string[] = [];
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A') out.push(cols[1].split(':')[0]!);
      }
    }
    return out;
  }

  it('both listen on loopback only when no host is given', () => {
    // 0100007F is 127.0.0.1 as /proc/net/tcp writes it.
    expect(listening(serve.port)).toEqual(['0100007F']);
    expect(listening(llm.port)).toEqual(['0100007F']);
    expect(serve.logs()).not.toMatch(/reachable from other machines/);
    expect(llm.logs()).not.toMatch(/reachable from other machines/);
  });
});
