import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../fixtures/free-port.ts';
import { formatSynthesizerInput } from 'instruct-pt';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { chooseEndpoint } from '../../connectors/llm/endpoint-routing.ts';
import { EndpointState, type Pending } from '../../connectors/llm/endpoint-state.ts';
import { SimulatedBatchingServer } from '../../ops/bench/simulated-batching-server.ts';
import { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';

const toStop: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (toStop.length) await toStop.pop()!.stop();
});

async function sim(tokensPerSecond = 50_000, maxBatch = 32) {
  const s = new SimulatedBatchingServer({ tokensPerSecond, maxBatch });
  await s.start();
  toStop.push(s);
  return s;
}

async function recorded(texts: string[]) {
  const s = new RecordedCompletionsServer(Object.fromEntries(texts.map((t) => [t, `<QUE> About ${t}? <ANS> yes </END>`])));
  await s.start();
  toStop.push(s);
  return s;
}

describe('SynthesisPool', () => {
  it('grows its in-flight window past the server’s batch and keeps it saturated', async () => {
    // Modest request rates: client and simulator share this process. `ipt bench synthesis` measures the ratio.
    const s = await sim(8_000, 32);
    const pool = new SynthesisPool({ endpoints: [s.url], model: 'sim', initialWindow: 2 });
    s.resetClock();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 600 }, () => pool.complete({ prompt: 'p', maxTokens: 40, temperature: 0 })));
    const rate = (600 * 40) / ((performance.now() - t0) / 1000);
    expect(pool.stats()[0]!.window).toBeGreaterThanOrEqual(32);
    expect(rate / 8_000).toBeGreaterThan(0.75);
  });

  it('sends the same affinity key to the same endpoint, and spreads keys over endpoints', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
    const a = await recorded(texts);
    const b = await recorded(texts);
    const pool = new SynthesisPool({ endpoints: [a.url, b.url], model: 'r', affinity: true });
    for (let round = 0; round < 3; round++) {
      await Promise.all(texts.map((t, i) => pool.complete({ prompt: formatSynthesizerInput(t), maxTokens: 8, temperature: 0, affinityKey: `collection-${i}` })));
    }
    const where = (s: RecordedCompletionsServer) => new Set(s.prompts.map((p) => RecordedCompletionsServer.lastContext(p)));
    const onA = where(a);
    const onB = where(b);
    expect([...onA].filter((t) => onB.has(t))).toEqual([]);
    expect(onA.size + onB.size).toBe(40);
    // Binomial(40, ½): below 6 on either side has a chance of about 2e-6.
    expect(Math.min(onA.size, onB.size)).toBeGreaterThan(5);
    expect(a.prompts.length + b.prompts.length).toBe(120);
  });

  it('halves the window on 503 and retries until the request succeeds', async () => {
    const s = await recorded(['t']);
    s.transientFailures.set('t', 3);
    const pool = new SynthesisPool({ endpoints: [s.url], model: 'r', initialWindow: 16, backoffMs: 10 });
    const r = await pool.complete({ prompt: formatSynthesizerInput('t'), maxTokens: 8, temperature: 0 });
    expect(r.attempts).toBe(4);
    // Three 503s in one round trip halve the window once (16 → 8); the success then adds 1/8.
    expect(pool.stats()[0]!.window).toBeCloseTo(8.1, 5);
    // The dashboard's view of the endpoint: three 5xx answers, one completion, up.
    expect(pool.stats()[0]).toMatchObject({ model: 'r', completed: 1, errors: 3, failures: { http5xx: 3 }, down: false });
    expect(pool.stats()[0]!.lastError).toMatch(/^HTTP 503 from /);
  });

  it('moves work off a dead endpoint and reports a record whose deadline passes', async () => {
    const s = await recorded(['t', 'u']);
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    const pool = new SynthesisPool({ endpoints: [dead, s.url], model: 'r', backoffMs: 20, affinity: false });
    const rs = await Promise.all(['t', 'u', 't', 'u'].map((x) => pool.complete({ prompt: formatSynthesizerInput(x), maxTokens: 8, temperature: 0 })));
    expect(rs.every((r) => r.text.includes('<ANS> yes'))).toBe(true);
    const onlyDead = new SynthesisPool({ endpoints: [dead], model: 'r', backoffMs: 50, deadlineMs: 400 });
    await expect(onlyDead.complete({ prompt: 'x', maxTokens: 1, temperature: 0 })).rejects.toThrow(/within the 400 ms deadline/);
  });

  it('sends a record refused by its affinity endpoint to another one, rather than back to the refuser when its backoff ends', async () => {
    const s = await recorded(['t']);
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    const pool = new SynthesisPool({ endpoints: [dead, s.url], model: 'r', backoffMs: 200, deadlineMs: 5000 });
    // Collections one at a time: some are keyed to the dead endpoint (each with probability ½), and such a record
    // alone sets the endpoint's backoff, so it wakes just as that backoff ends.
    const rs = [];
    for (let i = 0; i < 16; i++) rs.push(await pool.complete({ prompt: formatSynthesizerInput('t'), maxTokens: 8, temperature: 0, affinityKey: `c${i}` }));
    expect(rs.every((r) => r.text.includes('<ANS> yes'))).toBe(true);
    // Refused once at most: the retry goes to the endpoint that answers.
    expect(Math.max(...rs.map((r) => r.attempts))).toBeLessThanOrEqual(2);
  });

  it('chooses an endpoint: the affinity one while it is up and did not refuse the record, else the least loaded, a refuser before a down one', () => {
    const [a, b, c] = ['http://a/v1', 'http://b/v1', 'http://c/v1'].map((u) => new EndpointState(u, 8, { minWindow: 1, maxWindow: 64 })) as [EndpointState, EndpointState, EndpointState];
    const record = (affinityKey?: string, refusedBy?: EndpointState): Pending => ({ req: { prompt: 'p', maxTokens: 1, temperature: 0, affinityKey }, deadline: Infinity, attempts: 1, failures: 0, lastError: '', refusedBy, resolve: () => undefined, reject: () => undefined });
    const now = 1_000_000;
    const keyed = chooseEndpoint([a, b], record('k'), true, 0, now);
    const other = keyed === a ? b : a;
    // The same key, the same endpoint, whatever the load or the round-robin start.
    keyed.inFlight = 7;
    expect(chooseEndpoint([a, b], record('k'), true, 1, now)).toBe(keyed);
    keyed.inFlight = 0;
    // It refused the record last, its backoff over: the other one.
    expect(chooseEndpoint([a, b], record('k', keyed), true, 0, now)).toBe(other);
    expect(chooseEndpoint([a, b], record(undefined, keyed), true, 0, now)).toBe(other);
    // Down: the other one; both down: the one back first is not known, so the least loaded of them.
    keyed.downUntil = now + 1000;
    expect(chooseEndpoint([a, b], record('k'), true, 0, now)).toBe(other);
    other.downUntil = now + 1000;
    other.inFlight = 3;
    expect(chooseEndpoint([a, b], record('k'), true, 0, now)).toBe(keyed);
    // The refuser whose backoff has passed comes before an endpoint still down.
    a.downUntil = 0;
    b.downUntil = now + 1000;
    a.inFlight = b.inFlight = 0;
    expect(chooseEndpoint([a, b], record(undefined, a), false, 1, now)).toBe(a);
    // A single endpoint is always chosen, refuser or down.
    c.downUntil = now + 1000;
    expect(chooseEndpoint([c], record('k', c), true, 0, now)).toBe(c);
    // Ties go round-robin from `start`.
    b.downUntil = 0;
    expect([0, 1].map((s) => chooseEndpoint([a, b], record(), false, s, now))).toEqual([a, b]);
  });

  it('resumes traffic when a server comes back', async () => {
    const port = await freePort();
    const pool = new SynthesisPool({ endpoints: [`http://127.0.0.1:${port}/v1`], model: 'sim', backoffMs: 50, maxBackoffMs: 200 });
    const pending = Promise.all(Array.from({ length: 10 }, () => pool.complete({ prompt: 'p', maxTokens: 3, temperature: 0 })));
    await sleep(500);
    const s = new SimulatedBatchingServer({ tokensPerSecond: 10_000, maxBatch: 8 });
    const app = await s.startOn(port);
    toStop.push(s);
    void app;
    const results = await pending;
    expect(results.every((r) => r.attempts > 1 && r.completionTokens === 3)).toBe(true);
  });

  it('spends time, not attempts, while every endpoint refuses connections: an outage within the deadline loses nothing', async () => {
    const port = await freePort();
    // One attempt only: a refused connection must not count as one, or this request would fail at once.
    const pool = new SynthesisPool({ endpoints: [`http://127.0.0.1:${port}/v1`], model: 'sim', maxAttempts: 1, backoffMs: 50, maxBackoffMs: 200, deadlineMs: 20_000 });
    const pending = Promise.all(Array.from({ length: 5 }, () => pool.complete({ prompt: 'p', maxTokens: 2, temperature: 0 })));
    await sleep(1500);
    const s = new SimulatedBatchingServer({ tokensPerSecond: 10_000, maxBatch: 8 });
    await s.startOn(port);
    toStop.push(s);
    const results = await pending;
    expect(results.every((r) => r.completionTokens === 2 && r.attempts > 1)).toBe(true);
  });

  it('fails a record whose endpoints stay down past the deadline, naming the endpoint and the cause', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    const pool = new SynthesisPool({ endpoints: [dead], model: 'r', backoffMs: 20, maxBackoffMs: 100, deadlineMs: 500 });
    await expect(pool.complete({ prompt: 'x', maxTokens: 1, temperature: 0 })).rejects.toThrow(new RegExp(`within the 500 ms deadline: .*ECONNREFUSED.* at ${dead}`));
    expect((await pool.probe(1000))[0]).toMatchObject({ url: dead, reachable: false, error: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('keeps its process alive while records wait for a down endpoint (no silent exit with work pending)', async () => {
    const { spawn } = await import('node:child_process');
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    // Nothing but the pool's retry timers keeps this script's event loop busy: an unref'd timer lets Node exit 0
    // with the request never answered.
    const script = `
      import { SynthesisPool } from './connectors/llm/synthesis-pool.ts';
      const pool = new SynthesisPool({ endpoints: [${JSON.stringify(dead)}], model: 'r', backoffMs: 200, maxBackoffMs: 400, deadlineMs: 1500 });
      pool.complete({ prompt: 'x', maxTokens: 1, temperature: 0 }).then(() => process.exit(3), (e) => { console.log('rejected:', e.message); process.exit(4); });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(out).toMatch(/rejected: .*1500 ms deadline/);
    expect(code).toBe(4);
  }, 30_000);

  it('batches queued prompts into prompt arrays, with per-prompt results', async () => {
    const s = await sim(20_000, 64);
    const pool = new SynthesisPool({ endpoints: [s.url], model: 'sim', initialWindow: 64, batchPrompts: 16 });
    const rs = await Promise.all(Array.from({ length: 256 }, () => pool.complete({ prompt: 'p', maxTokens: 5, temperature: 0 })));
    expect(rs.every((r) => r.completionTokens === 5 && r.text === ' tok'.repeat(5))).toBe(true);
    expect(s.httpRequests).toBeLessThanOrEqual(256 / 4);
  });

  it('falls back to one prompt per request for a server that refuses arrays', async () => {
    const texts = ['a', 'b', 'c', 'd', 'e', 'f'];
    const s = await recorded(texts);
    const pool = new SynthesisPool({ endpoints: [s.url], model: 'r', initialWindow: 8, batchPrompts: 4 });
    const rs = await Promise.all(texts.map((t) => pool.complete({ prompt: formatSynthesizerInput(t), maxTokens: 8, temperature: 0 })));
    expect(rs.map((r) => r.text)).toEqual(texts.map((t) => `<QUE> About ${t}? <ANS> yes </END>`));
    expect(rs.every((r) => r.attempts === 1)).toBe(true);
    expect(s.prompts).toHaveLength(6);
  });

  it('does not retry a request the server calls invalid', async () => {
    const s = await recorded([]);
    const pool = new SynthesisPool({ endpoints: [s.url], model: 'r' });
    await expect(pool.complete({ prompt: formatSynthesizerInput('unknown'), maxTokens: 1, temperature: 0 })).rejects.toMatchObject({ attempts: 1, status: 404 });
  });
});
