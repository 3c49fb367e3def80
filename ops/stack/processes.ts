import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync, existsSync, rmSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Starts a long-lived service detached from this process, its output appended to logFile, its pid in pidFile. */
export function startDetached(cmd: string, args: string[], opts: { cwd: string; logFile: string; pidFile: string; env?: NodeJS.ProcessEnv }): number {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const out = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...opts.env } });
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  child.unref();
  writeFileSync(opts.pidFile, String(child.pid));
  return child.pid;
}

export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL; removes the pid file. Only ever signals the pid we recorded. */
export async function stopPid(pidFile: string, graceMs = 20_000): Promise<boolean> {
  const pid = readPid(pidFile);
  if (pid === undefined || !isAlive(pid)) {
    rmSync(pidFile, { force: true });
    return false;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(pidFile, { force: true });
  return true;
}

/** Polls check() until it resolves true or timeoutMs passes; also fails early when the process died. */
export async function waitFor(check: () => Promise<boolean>, opts: { timeoutMs: number; pid?: number; what: string; logFile: string }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (opts.pid !== undefined && !isAlive(opts.pid)) {
      throw new Error(`${opts.what} exited during start-up; see its log: ${opts.logFile}\n${tail(opts.logFile)}`);
    }
    await sleep(300);
  }
  throw new Error(`${opts.what} did not become healthy within ${opts.timeoutMs / 1000}s; see its log: ${opts.logFile}\n${tail(opts.logFile)}`);
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '(no log written)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}
