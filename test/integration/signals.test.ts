import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { freePort } from '../fixtures/free-port.ts';
import { createTopics, serdeFor, stackEnv, testKafka, topicSize, uniq } from './helpers.ts';

// The pid a supervisor signals (systemd, Docker, Kubernetes: the main pid; a shell: npm's) must be the one that shuts
// the work down: after one SIGTERM to it, nothing of the command may be left, and the exit code is 0.

const STOP_WITHIN_MS = 10_000;

/** Every live process whose arguments include `marker` (a port or topic only this test's command has). */
function processesWith(marker: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.includes(marker)) found.push({ pid: Number(entry), cmd: args.join(' ').trim() });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

const started: ChildProcess[] = [];
const markers: string[] = [];

function start(via: 'bin' | 'npm', args: string[], env: Record<string, string> = {}): ChildProcess {
  const [cmd, argv] = via === 'bin' ? [process.execPath, ['ops/cli/bin.js', ...args]] : ['npm', ['run', '-s', 'ipt', '--', ...args]];
  const child = spawn(cmd, argv, { env: { ...process.env, IPT_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code !== 0) process.stderr.write(`[signals] ${args[0]} via ${via} exited ${code ?? signal}:\n${stderr}\n`);
  });
  started.push(child);
  return child;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function waitFor(url: string, child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before ${url} answered`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** SIGTERM to the pid we started; then its exit code, how long it took, and what is left of the command. */
async function terminate(child: ChildProcess, marker: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; left: string[] }> {
  const t0 = Date.now();
  child.kill('SIGTERM');
  const exit = await Promise.race([exitOf(child), sleep(STOP_WITHIN_MS).then(() => ({ code: null, signal: null }))]);
  const ms = Date.now() - t0;
  // Whatever the command's own processes were, they are to be gone by the same deadline.
  let left = processesWith(marker);
  while (left.length > 0 && Date.now() - t0 < STOP_WITHIN_MS) {
    await sleep(200);
    left = processesWith(marker);
  }
  return { ...exit, ms, left: left.map((p) => `${p.pid} ${p.cmd}`) };
}

afterAll(() => {
  // A failed run must not leave its processes behind: end those this file started, by pid.
  for (const marker of markers) for (const p of processesWith(marker)) process.kill(p.pid, 'SIGKILL');
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('SIGTERM to ipt reaches the process doing the work', () => {
  for (const via of ['bin', 'npm'] as const) {
    it(`serve-llm through ${via === 'bin' ? 'the installed bin (ops/cli/bin.js)' : 'npm run -s ipt'}: exits 0 with a completion in flight, nothing left`, async () => {
      const port = await freePort();
      const marker = String(port);
      markers.push(marker);
      const child = start(via, ['serve-llm', '--model', inject('smallModel'), '--port', marker, '--parallel', '1', '--context-size', '1024']);
      await waitFor(`http://127.0.0.1:${port}/health`, child);
      // A long completion, so that the signal comes mid-decode.
      const completion = fetch(`http://127.0.0.1:${port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,', max_tokens: 900, temperature: 0 }),
      }).then(
        (r) => r.text(),
        (err: Error) => err.message,
      );
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && ((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { busy: number }).busy === 0) await sleep(100);
      const r = await terminate(child, marker);
      await completion;
      expect(r.left).toEqual([]);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThan(STOP_WITHIN_MS);
    });
  }
});

describe('SIGTERM to a processor on the stack', () => {
  let kafka: Kafka;
  beforeAll(() => {
    kafka = testKafka();
  });

  it('through the installed bin: finishes and commits the batch in flight, exits 0, nothing left', async () => {
    const input = uniq('it.signals.in');
    const output = uniq('it.signals.out');
    const group = uniq('it-signals');
    markers.push(input);
    const n = 20_000;
    await createTopics(kafka, [input, output]);
    const serde = await serdeFor([input]);
    await produceAll(kafka, input, rawTextMessages(serde, input, sampleTexts(n, { runId: input, bytes: 300 })));
    const child = start('bin', ['processor', 'identity', '--input', input, '--output', output, '--name', group], { ...stackEnv(), IPT_BATCH_SIZE: '100' });
    // Signal it mid-stream: some output, not all.
    const deadline = Date.now() + 120_000;
    while ((await topicSize(kafka, output)) < 1_000 && Date.now() < deadline && child.exitCode === null) await sleep(100);
    const r = await terminate(child, input);
    expect(r.left).toEqual([]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    // Every record whose output went out is committed, and nothing past it: a restart neither redoes nor skips any.
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [input] });
      const committed = offsets!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
      const out = await topicSize(kafka, output);
      expect(out).toBeGreaterThan(0);
      expect(committed).toBe(out);
    } finally {
      await admin.disconnect();
    }
  });

  it('through npm run -s ipt: exits 0 once ready, nothing left', async () => {
    const input = uniq('it.signals.in');
    const output = uniq('it.signals.out');
    markers.push(input);
    const metricsPort = await freePort();
    const child = start('npm', ['processor', 'identity', '--input', input, '--output', output, '--name', uniq('it-signals')], { ...stackEnv(), IPT_METRICS_PORT: String(metricsPort) });
    await waitFor(`http://127.0.0.1:${metricsPort}/readyz`, child);
    const r = await terminate(child, input);
    expect(r.left).toEqual([]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });
});
