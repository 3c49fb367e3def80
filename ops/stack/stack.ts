import { rmSync } from 'node:fs';
import type { StackConfig } from './stack-config.ts';
import { isCluster } from './stack-config.ts';
import { allServices, kafkaService, type Service } from './services.ts';
import { isAlive, readPid, stopPid, waitFor } from './processes.ts';
import { clusterDown, clusterStatus, clusterUp } from './cluster.ts';
import { readClusterRecord } from './cluster-record.ts';

export interface ServiceStatus {
  name: string;
  healthy: boolean;
  pid?: number;
  endpoint: string;
  log: string;
  /** Something to know beyond up/down (a cluster node cut off by isolateNode). */
  note?: string;
}

type Log = (line: string) => void;

/** Installs what is missing and starts every selected service that is not already healthy; a second call is a no-op. */
export async function stackUp(cfg: StackConfig, log: Log = () => undefined): Promise<ServiceStatus[]> {
  const out: ServiceStatus[] = [];
  if (cfg.services.includes('kafka')) {
    if (isCluster(cfg)) out.push(...(await clusterUp(cfg, log)));
    else out.push(await ensureUp(kafkaService(cfg), log));
  }
  for (const svc of otherServices(cfg)) out.push(await ensureUp(svc, log));
  return out;
}

/** The selected services besides Kafka, in start order (the registry's store before the registry). */
function otherServices(cfg: StackConfig): Service[] {
  const group = (name: string) => (name === 'clickhouse' ? 'clickhouse' : 'registry');
  return allServices(cfg).filter((s) => s.name !== 'kafka' && cfg.services.includes(group(s.name)));
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

/** One row per selected service; a cluster shows one row per node (kafka-1, kafka-2, …). */
export async function stackStatus(cfg: StackConfig): Promise<ServiceStatus[]> {
  const check = async (svc: Service) => status(svc, await svc.healthy());
  const kafka = !cfg.services.includes('kafka') ? [] : isCluster(cfg) ? await clusterStatus(cfg) : [await check(kafkaService(cfg))];
  return [...kafka, ...(await Promise.all(otherServices(cfg).map(check)))];
}

/** Stops the services this stack started (by their recorded pids), cluster nodes included. `wipe` also deletes their data. */
export async function stackDown(cfg: StackConfig, opts: { wipe?: boolean } = {}, log: Log = () => undefined): Promise<void> {
  // Reverse order: ClickHouse and the registry before Kafka.
  for (const svc of allServices(cfg).reverse()) {
    const stopped = await stopPid(svc.pidFile);
    log(`${svc.name}: ${stopped ? 'stopped' : 'not running'}`);
  }
  if (isCluster(cfg) || readClusterRecord(cfg.dir)) await clusterDown(cfg, opts, log);
  if (opts.wipe) {
    for (const svc of allServices(cfg)) {
      rmSync(svc.dataDir, { recursive: true, force: true });
    }
    log('data wiped');
  }
}
