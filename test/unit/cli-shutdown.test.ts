import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, shutdownTimeoutMs } from '../../processors/runtime/run-until-signal.ts';

// Signals and the event loop's end are process-wide: each case runs in a node process of its own.
const PRELUDE = `
import { stopOnSignals, exitIfUnsettled, StageFailure } from './processors/runtime/run-until-signal.ts';
import { createLogger } from './processors/runtime/logger.ts';
const logger = createLogger('test', 'silent');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const never = new Promise(() => {});
// Keeps the event loop busy the way a consumer's fetch loop does.
const keepAlive = setInterval(() => {}, 1000);
const finish = (p) => p.then(
  () => { console.log('stopped cleanly'); process.exit(0); },
  (err) => { console.error('ipt: ' + err.message + (err instanceof StageFailure ? ' [StageFailure]' : '')); process.exit(1); },
);
`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the script; once it prints "ready", sends the signals, each after its delay (ms since the previous one). */
function runScript(body: string, opts: { signals?: [NodeJS.Signals, number][]; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PRELUDE + body], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const started = Date.now();
    let readyAt = started;
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', async (d: Buffer) => {
      stdout += d.toString();
      if (signalled || !stdout.includes('ready')) return;
      signalled = true;
      readyAt = Date.now();
      for (const [signal, delay] of opts.signals ?? []) {
        await new Promise((r) => setTimeout(r, delay));
        child.kill(signal);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - readyAt });
    });
  });
}

describe('IPT_SHUTDOWN_TIMEOUT_MS', () => {
  it('defaults to 30 s and takes a whole number of milliseconds', () => {
    expect(DEFAULT_SHUTDOWN_TIMEOUT_MS).toBe(30_000);
    expect(shutdownTimeoutMs({})).toBe(30_000);
    expect(shutdownTimeoutMs({ IPT_SHUTDOWN_TIMEOUT_MS: '' })).toBe(30_000);
    expect(shutdownTimeoutMs({ IPT_SHUTDOWN_TIMEOUT_MS: '2500' })).toBe(2500);
    expect(shutdownTimeoutMs({ IPT_SHUTDOWN_TIMEOUT_MS: '2147483647' })).toBe(2147483647);
  });

  it('rejects anything else, naming the variable', () => {
    for (const bad of ['0', '-5', '1e3', '0x10', ' 5', '5 ', '2.5', 'abc', '30s', '2147483648']) {
      expect(() => shutdownTimeoutMs({ IPT_SHUTDOWN_TIMEOUT_MS: bad }), bad).toThrow(ConfigError);
      expect(() => shutdownTimeoutMs({ IPT_SHUTDOWN_TIMEOUT_MS: bad }), bad).toThrow(/IPT_SHUTDOWN_TIMEOUT_MS/);
    }
  });

  it('is checked by ipt before any command runs: usage error, exit 2', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', 'models', 'path'], {
      env: { ...process.env, IPT_SHUTDOWN_TIMEOUT_MS: '30s' },
      encoding: 'utf8',
    });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/^ipt: IPT_SHUTDOWN_TIMEOUT_MS=30s: /);
    expect(res.stdout).toBe('');
  });
});

describe('stopOnSignals', () => {
  it('on SIGTERM or SIGINT stops every stage, then resolves (exit 0); the same signal twice at once counts once', async () => {
    const body = `
      const stage = (name) => ({ name, done: never, stop: async () => { await sleep(300); console.log(name + ' stopped'); } });
      finish(stopOnSignals([stage('a'), stage('b')], logger, undefined, { timeoutMs: 10_000 })).finally(() => clearInterval(keepAlive));
      console.log('ready');
    `;
    const [term, int] = await Promise.all([
      runScript(body, { signals: [['SIGTERM', 0], ['SIGTERM', 20]] }),
      runScript(body, { signals: [['SIGINT', 0]] }),
    ]);
    for (const r of [term, int]) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('a stopped');
      expect(r.stdout).toContain('b stopped');
      expect(r.stdout).toContain('stopped cleanly');
    }
  });

  it('gives up with exit 1 when the shutdown outlasts IPT_SHUTDOWN_TIMEOUT_MS, or on a second signal, naming what did not stop', async () => {
    const body = `
      const quick = { name: 'quick', done: never, stop: async () => {} };
      const stuck = { name: 'stuck stage', done: never, stop: () => never };
      finish(stopOnSignals([quick, stuck], logger));
      console.log('ready');
    `;
    const [timedOut, second] = await Promise.all([
      runScript(body, { signals: [['SIGTERM', 0]], env: { IPT_SHUTDOWN_TIMEOUT_MS: '400' } }),
      runScript(body, { signals: [['SIGTERM', 0], ['SIGINT', 300]] }),
    ]);
    expect(timedOut.code).toBe(1);
    expect(timedOut.stderr.trim()).toBe('ipt: shutdown (SIGTERM) timed out after 400 ms (IPT_SHUTDOWN_TIMEOUT_MS): stuck stage did not stop in time');
    expect(timedOut.ms).toBeLessThan(5000);
    expect(second.code).toBe(1);
    expect(second.stderr.trim()).toBe('ipt: SIGINT while shutting down (SIGTERM): stuck stage had not stopped');
  });

  it('a stage that stops by itself stops the others and fails the process with its error (exit 1)', async () => {
    const body = `
      let failure;
      let crash;
      const crashed = { name: 'processor synthesis', done: new Promise((r) => (crash = r)), get failure() { return failure; }, stop: async () => {} };
      const other = { name: 'processor mixing', done: never, stop: async () => { console.log('mixing stopped'); } };
      finish(stopOnSignals([crashed, other], logger));
      console.log('ready');
      setTimeout(() => { failure = new Error('consumer crashed 6 times'); crash(); }, 50);
    `;
    // The same through a done that carries the error, and through one that just ends.
    const carried = body.replace("failure = new Error('consumer crashed 6 times'); crash();", "crash(new Error('consumer crashed 6 times'));");
    const silent = body.replace("failure = new Error('consumer crashed 6 times'); crash();", 'crash();');
    const results = await Promise.all([runScript(body), runScript(carried), runScript(silent)]);
    for (const r of results) {
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('mixing stopped');
      expect(r.stdout).not.toContain('stopped cleanly');
    }
    expect(results[0]!.stderr.trim()).toBe('ipt: processor synthesis stopped by itself: consumer crashed 6 times [StageFailure]');
    expect(results[1]!.stderr.trim()).toBe('ipt: processor synthesis stopped by itself: consumer crashed 6 times [StageFailure]');
    expect(results[2]!.stderr.trim()).toBe('ipt: processor synthesis stopped by itself (nothing asked it to stop) [StageFailure]');
  });

  it('a stage that fails to stop fails the process (exit 1)', async () => {
    const r = await runScript(
      `
      finish(stopOnSignals([{ name: 'sink', done: never, stop: async () => { throw new Error('commit failed'); } }], logger));
      console.log('ready');
    `,
      { signals: [['SIGTERM', 0]] },
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('ipt: sink failed to stop: commit failed [StageFailure]');
  });
});

describe('exitIfUnsettled', () => {
  it('exits 1 with a line when the event loop drains while the command is pending; lets a settled one exit 0', async () => {
    const [pending, settled] = await Promise.all([
      runScript(`clearInterval(keepAlive); exitIfUnsettled('augment', never); console.log('ready');`),
      runScript(`clearInterval(keepAlive); exitIfUnsettled('augment', sleep(100).then(() => console.log('work done'))); console.log('ready');`),
    ]);
    expect(pending.code).toBe(1);
    expect(pending.stderr).toBe('ipt: augment stopped with work unfinished (internal error: nothing left to wait on)\n');
    expect(settled.code).toBe(0);
    expect(settled.stderr).toBe('');
    expect(settled.stdout).toContain('work done');
  });
});
