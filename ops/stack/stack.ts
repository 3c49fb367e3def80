import { rmSync } from 'node:fs';
import type { StackConfig } from './stack-config.ts';
import { allServices, type Service } from './services.ts';
import { isAlive, readPid, stopPid, waitFor } from './processes.ts';

export interface ServiceStatus {
  name: string;
  healthy: boolean;
  pid?: number;
  endpoint: string;
  log: string;
}

type Log = (line: string) => void;

/** Installs what is missing and starts every service that is not already healthy; a second call is a no-op. */
export async function stackUp(cfg: StackConfig, log: Log = () => undefined): Promise<ServiceStatus[]> {
  const out: ServiceStatus[] = [];
  for (const svc of allServices(cfg)) out.push(await ensureUp(svc, log));
  return out;
}

async function ensureUp(svc: Service, log: Log): Promise<ServiceStatus> {
  if (await svc.healthy()) {
    log(`${svc.name}: already healthy at ${svc.endpoint}`);
    return status(svc, true);
  }
  const stale = readPid(svc.pidFile);
  if (stale !== undefined && isAlive(stale)) {
    // Started by an earlier `up` that is still booting: wait for it rather than starting a second copy.
    log(`${svc.name}: waiting for pid ${stale} to become healthy`);
    await waitFor(svc.healthy, { timeoutMs: svc.startTimeoutMs, pid: stale, what: svc.name, logFile: svc.logFile });
    return status(svc, true);
  }
  log(`${svc.name}: installing (if missing)`);
  svc.install();
  log(`${svc.name}: starting`);
  let pid: number;
  try {
    pid = svc.start();
  } catch (err) {
    throw new Error(`${svc.name} failed to start: ${(err as Error).message}; log: ${svc.logFile}`);
  }
  await waitFor(svc.healthy, { timeoutMs: svc.startTimeoutMs, pid, what: svc.name, logFile: svc.logFile });
  log(`${svc.name}: healthy at ${svc.endpoint} (pid ${pid})`);
  return status(svc, true);
}

function status(svc: Service, healthy: boolean): ServiceStatus {
  return { name: svc.name, healthy, pid: readPid(svc.pidFile), endpoint: svc.endpoint, log: svc.logFile };
}

export async function stackStatus(cfg: StackConfig): Promise<ServiceStatus[]> {
  return Promise.all(allServices(cfg).map(async (svc) => status(svc, await svc.healthy())));
}

/** Stops the services this stack started (by their recorded pids). `wipe` also deletes their data. */
export async function stackDown(cfg: StackConfig, opts: { wipe?: boolean } = {}, log: Log = () => undefined): Promise<void> {
  // Reverse order: ClickHouse and the registry before Kafka.
  for (const svc of allServices(cfg).reverse()) {
    const stopped = await stopPid(svc.pidFile);
    log(`${svc.name}: ${stopped ? 'stopped' : 'not running'}`);
  }
  if (opts.wipe) {
    for (const svc of allServices(cfg)) {
      rmSync(svc.dataDir, { recursive: true, force: true });
    }
    log('data wiped');
  }
}
