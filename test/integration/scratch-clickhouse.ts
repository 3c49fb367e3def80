import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clickhouseService } from '../../ops/stack/services.ts';
import { stackConfig } from '../../ops/stack/stack-config.ts';
import { isAlive, waitFor } from '../../ops/stack/processes.ts';
import { freePort } from '../fixtures/free-port.ts';

/**
 * A clickhouse-server of the test's own, beside the shared stack's (which other tests use and which must never be
 * stopped): a temporary directory, free loopback ports, the stack's own config writer (ops/stack/services.ts; that
 * config opens no interserver port). It can be stopped and started again on the same data and ports.
 */
export interface ScratchClickhouse {
  url: string;
  dir: string;
  pid(): number | undefined;
  start(): Promise<void>;
  /** Signals the server (SIGTERM: a clean shutdown) and waits until it has exited; SIGKILL after 20 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server and deletes its directory. */
  dispose(): Promise<void>;
}

export async function startScratchClickhouse(): Promise<ScratchClickhouse> {
  const root = mkdtempSync(join(tmpdir(), 'ipt-clickhouse-'));
  const cfg = { ...stackConfig({}, root), dir: root, clickhouseHttpPort: await freePort(), clickhouseTcpPort: await freePort() };
  const service = clickhouseService(cfg);
  service.install();
  let pid: number | undefined;
  const server: ScratchClickhouse = {
    url: service.endpoint,
    dir: root,
    pid: () => pid,
    async start() {
      pid = service.start();
      await waitFor(service.healthy, { timeoutMs: service.startTimeoutMs, pid, what: 'scratch clickhouse-server', logFile: service.logFile });
    },
    async stop(signal = 'SIGTERM') {
      const p = pid;
      if (p === undefined || !isAlive(p)) return;
      process.kill(p, signal);
      const deadline = Date.now() + 20_000;
      while (isAlive(p) && Date.now() < deadline) await sleep(100);
      if (isAlive(p)) process.kill(p, 'SIGKILL');
      while (isAlive(p)) await sleep(50);
      pid = undefined;
    },
    async dispose() {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}
