import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inHostNamespace, type HostNamespace } from '../stack/netns.ts';
import { cliCommand, PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

const REPO = PACKAGE_ROOT;

/**
 * `ipt pipeline up --stages …` (or another long-running `ipt` command) as an OS process of its own (node itself is the pid, so SIGKILL hits the stages and
 * nothing else), restarted with the same arguments and environment: the same consumer groups and, with exactly-once,
 * the same transactional ids, so the new process fences the killed one's open transactions.
 */
export class StageProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  /** Exits nobody asked for, each restarted as a supervisor (systemd, Kubernetes) would. */
  readonly unplannedExits: { code: number | null; signal: string | null; lastLines: string }[] = [];
  private planned = true;
  private supervised = false;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    /** Where its ops server answers /readyz (IPT_METRICS_PORT). */
    private readonly metricsPort: number,
    /** Runs inside this host namespace (`ip netns exec`), where it can be cut off the network. */
    readonly host?: HostNamespace,
    /** The `ipt` command it runs (`sink` for the trainer sink). */
    private readonly command: string[] = ['pipeline', 'up'],
  ) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  get logFile(): string {
    return join(this.logDir, `${this.name}.log`);
  }

  /** Spawns the process; resolves at once (see ready()). */
  start(): void {
    if (this.pid !== undefined) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    const out = openSync(this.logFile, 'a');
    const [exe, cli] = cliCommand();
    const node: [string, string[]] = [exe, [...cli, ...this.command, ...this.args]];
    // ip execs node after entering the namespace: the child's pid is node's, as without it.
    const [cmd, args] = this.host ? inHostNamespace(this.host, ...node) : node;
    const child = spawn(cmd, args, {
      cwd: REPO,
      env: { ...this.env, IPT_METRICS_PORT: String(this.metricsPort) },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    this.child = child;
    this.planned = false;
    this.exit = new Promise((r) =>
      child.once('exit', (code, signal) => {
        r();
        if (this.planned || !this.supervised) return;
        this.unplannedExits.push({ code, signal, lastLines: this.tail(3) });
        setTimeout(() => {
          if (this.supervised && this.pid === undefined && !this.planned) this.start();
        }, 1000);
      }),
    );
  }

  /** From now on an exit that kill()/stop() did not ask for is recorded and followed by a restart a second later. */
  supervise(on = true): void {
    this.supervised = on;
  }

  /** Resolves when every stage of the process has joined its group (/readyz); fails when the process exits first. */
  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.pid === undefined) throw new Error(`${this.name} exited (code ${this.child?.exitCode}, signal ${this.child?.signalCode}) before it was ready:\n${this.tail()}`);
      if (await this.answersReady()) return;
      await sleep(200);
    }
    throw new Error(`${this.name} was not ready within ${timeoutMs / 1000} s:\n${this.tail()}`);
  }

  /** GET /readyz on its ops server, which listens on the loopback of its own network namespace. */
  private async answersReady(): Promise<boolean> {
    const url = `http://127.0.0.1:${this.metricsPort}/readyz`;
    if (this.host) {
      // The host cannot reach a namespace's loopback: ask from inside it.
      const script = `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(1000)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`;
      const [cmd, args] = inHostNamespace(this.host, process.execPath, ['-e', script]);
      return new Promise((resolve) => execFile(cmd, args, { timeout: 5000 }, (err) => resolve(!err)));
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false; // not listening yet
    }
  }

  async kill(): Promise<void> {
    const pid = this.pid;
    this.planned = true;
    if (pid === undefined) return;
    this.child!.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM (a graceful stop: the batch in flight is finished and committed); SIGKILL after graceMs. Returns the seconds it took. */
  async stop(graceMs = 45_000): Promise<{ seconds: number; code: number | null; killed: boolean }> {
    const t0 = Date.now();
    this.planned = true;
    if (this.pid === undefined) return { seconds: 0, code: this.child?.exitCode ?? null, killed: false };
    this.child!.kill('SIGTERM');
    const timedOut = await Promise.race([this.exit.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) await this.kill();
    return { seconds: (Date.now() - t0) / 1000, code: this.child!.exitCode, killed: timedOut };
  }

  tail(lines = 20): string {
    if (!existsSync(this.logFile)) return '(no log)';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }
}
