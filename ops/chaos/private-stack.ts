import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackConfig, nativeEndpoints, type StackConfig, type StackEndpoints } from '../stack/stack-config.ts';
import { allServices } from '../stack/services.ts';
import { stackDown, stackUp } from '../stack/stack.ts';
import { isAlive, readPid } from '../stack/processes.ts';
import { onInterrupt } from './cleanup.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type ServiceName = 'kafka' | 'registry-store' | 'schema-registry' | 'clickhouse';

/** A stack of the chaos run's own: its services can be killed without touching anyone else's. */
export interface PrivateStack {
  cfg: StackConfig;
  endpoints: StackEndpoints;
  dir: string;
  /** Seconds `stackUp` took, per service and in all. */
  startup: { seconds: number; services: Record<string, number> };
  kill(name: ServiceName): Promise<number>;
  /** Starts again whatever is not healthy (stackUp); resolves when every service answers its health check. */
  restart(): Promise<number>;
  /** Stops every service, deletes its data and the stack's folders. Idempotent. */
  dispose(): Promise<void>;
}

/** Distinct loopback ports that were free a moment ago; held open together so none is handed out twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(srv);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * Links the binaries an existing stack already installed (the Kafka jars, the registry build) into the private stack's
 * folder, so that it starts in seconds instead of resolving Maven and building Go again. Read only: nothing of the
 * other stack is started, stopped or written.
 */
function seedInstalls(cfg: StackConfig, from: StackConfig): string[] {
  const seeded: string[] = [];
  const link = (rel: string) => {
    const src = join(from.dir, rel);
    const dst = join(cfg.dir, rel);
    if (!existsSync(src) || existsSync(dst)) return;
    mkdirSync(dirname(dst), { recursive: true });
    symlinkSync(src, dst);
    seeded.push(rel);
  };
  link(join('kafka', `libs-${cfg.kafkaVersion}`));
  link(join('bin', 'schema-registry'));
  return seeded;
}

export async function startPrivateStack(opts: { kafkaHeap?: string; log?: (line: string) => void } = {}): Promise<PrivateStack> {
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'ipt-chaos-stack-'));
  const [kafkaPort, kafkaControllerPort, registryPort, registryStorePort, clickhouseHttpPort, clickhouseTcpPort] = await freePorts(6);
  const env: NodeJS.ProcessEnv = {
    IPT_STACK_DIR: dir,
    IPT_KAFKA_PORT: String(kafkaPort),
    IPT_KAFKA_CONTROLLER_PORT: String(kafkaControllerPort),
    IPT_REGISTRY_PORT: String(registryPort),
    IPT_REGISTRY_STORE_PORT: String(registryStorePort),
    IPT_CLICKHOUSE_HTTP_PORT: String(clickhouseHttpPort),
    IPT_CLICKHOUSE_TCP_PORT: String(clickhouseTcpPort),
    IPT_KAFKA_HEAP: opts.kafkaHeap ?? '512m',
    IPT_REGISTRY_STORAGE: 'postgresql',
  };
  const cfg = stackConfig(env);
  const seeded = seedInstalls(cfg, stackConfig(process.env, REPO));
  if (seeded.length) log(`private stack: reusing installed ${seeded.join(', ')}`);
  const services = new Map(allServices(cfg).map((s) => [s.name, s]));
  let disposed: Promise<void> | undefined;
  let forget = () => undefined as void;

  const stack: PrivateStack = {
    cfg,
    endpoints: nativeEndpoints(cfg),
    dir,
    startup: { seconds: 0, services: {} },
    async kill(name) {
      const svc = services.get(name)!;
      const pid = readPid(svc.pidFile);
      if (pid === undefined || !isAlive(pid)) throw new Error(`${name} of the private stack is not running (pid file ${svc.pidFile})`);
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(50);
      log(`private stack: ${name} (pid ${pid}) killed`);
      return pid;
    },
    async restart() {
      const t0 = Date.now();
      await stackUp(cfg, (l) => log(`private stack: ${l}`));
      return (Date.now() - t0) / 1000;
    },
    dispose() {
      disposed ??= (async () => {
        forget();
        await stackDown(cfg, { wipe: true }).catch((err: Error) => log(`private stack: stopping failed: ${err.message}`));
        // As root the registry store lives under postgres's home, one folder per stack folder: it goes too.
        const store = services.get('registry-store');
        const storeDir = store && dirname(store.dataDir);
        if (storeDir && (storeDir.startsWith(dir) || /[/]instruct-pt[/][0-9a-f]{16}$/.test(storeDir))) rmSync(storeDir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
        log(`private stack: stopped, ${dir} removed`);
      })();
      return disposed;
    },
  };
  forget = onInterrupt(() => stack.dispose());

  const t0 = Date.now();
  try {
    const began = new Map<string, number>();
    await stackUp(cfg, (line) => {
      log(`private stack: ${line}`);
      const [name, what] = line.split(': ', 2) as [string, string | undefined];
      if (what?.startsWith('installing')) began.set(name, Date.now());
      else if (what?.startsWith('healthy at')) stack.startup.services[name] = (Date.now() - (began.get(name) ?? t0)) / 1000;
    });
  } catch (err) {
    await stack.dispose();
    throw new Error(`the chaos suite's private stack could not be started: ${(err as Error).message}`);
  }
  stack.startup.seconds = (Date.now() - t0) / 1000;
  return stack;
}

