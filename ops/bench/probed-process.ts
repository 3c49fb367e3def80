import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemoryPeaks } from './memory-probe.ts';
import { cliCommand, FROM_SOURCES, PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

const REPO = PACKAGE_ROOT;
// The probe module beside this one, as a path (a .ts file through tsx's loader from the sources, .js from dist/).
const PROBE = fileURLToPath(new URL(`./memory-probe${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url));

/**
 * An `ipt …` command as a process of its own with the memory probe loaded, so its peak memory is its own and nothing
 * else's. Output goes to a log file; stdout can be kept apart (a `--json` summary).
 */
export class ProbedProcess {
  private child: ChildProcess | undefined;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private markExited!: (v: { code: number | null; signal: string | null }) => void;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly dir: string,
    /** Where its ops server answers /readyz (IPT_METRICS_PORT), for `pipeline up`. */
    private readonly metricsPort?: number,
  ) {
    this.exited = new Promise((r) => (this.markExited = r));
  }

  get logFile(): string {
    return join(this.dir, `${this.name}.log`);
  }
  get stdoutFile(): string {
    return join(this.dir, `${this.name}.out`);
  }
  get probeFile(): string {
    return join(this.dir, `${this.name}.memory.json`);
  }
  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  start(): void {
    const err = openSync(this.logFile, 'a');
    const out = openSync(this.stdoutFile, 'w');
    const env: NodeJS.ProcessEnv = { ...this.env, IPT_MEMORY_PROBE: this.probeFile };
    if (this.metricsPort !== undefined) env.IPT_METRICS_PORT = String(this.metricsPort);
    const [exe, cli] = cliCommand([PROBE]);
    this.child = spawn(exe, [...cli, ...this.args], { cwd: REPO, env, stdio: ['ignore', out, err] });
    closeSync(err);
    closeSync(out);
    this.child.once('exit', (code, signal) => this.markExited({ code, signal }));
  }

  /** Resolves when its stages have joined their groups (/readyz); fails when it exits first. */
  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.pid === undefined) throw new Error(`${this.name} exited before it was ready:\n${this.tail()}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.metricsPort}/readyz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`${this.name} was not ready within ${timeoutMs / 1000} s:\n${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited (the probe writes its last sample at exit). */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.pid === undefined) return;
    this.child!.kill('SIGTERM');
    const late = await Promise.race([this.exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (late && this.pid !== undefined) {
      this.child!.kill('SIGKILL');
      await this.exited;
    }
  }

  peaks(): MemoryPeaks | undefined {
    return existsSync(this.probeFile) ? (JSON.parse(readFileSync(this.probeFile, 'utf8')) as MemoryPeaks) : undefined;
  }

  stdout(): string {
    return existsSync(this.stdoutFile) ? readFileSync(this.stdoutFile, 'utf8') : '';
  }

  tail(lines = 20): string {
    if (!existsSync(this.logFile)) return '(no log)';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }
}
