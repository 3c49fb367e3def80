import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackConfig, nativeEndpoints, type StackConfig, type StackEndpoints } from '../stack/stack-config.ts';
import { allServices } from '../stack/services.ts';
import { stackDown, stackUp } from '../stack/stack.ts';
import { isAlive, readPid } from '../stack/processes.ts';
import { clusterLayout, type ClusterLayout } from '../stack/cluster-layout.ts';
import { hostNamespace, teardownHostNamespaces, teardownNetwork, type HostNamespace } from '../stack/netns.ts';
import { onInterrupt } from './cleanup.ts';
import { PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

const REPO = PACKAGE_ROOT;

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
  /** A cluster in network namespaces (brokers > 1): its nodes and bridge. */
  layout?: ClusterLayout;
  /** A host namespace on the cluster's bridge (created when missing, removed with the stack); clusters only. */
  hostNamespace(name: string): HostNamespace;
}

/** A 10.77.x.0/24 no link routes yet, for the cluster's bridge (another engineer's cluster may hold the folder's default). */
function freeSubnet(): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  const start = Math.floor(Math.random() * 256);
  for (let i = 0; i < 256; i++) {
    const subnet = `10.77.${(start + i) % 256}`;
    if (!routes.includes(`${subnet}.0/24`)) return subnet;
  }
  throw new Error('every 10.77.x.0/24 is routed already: no subnet left for the private cluster');
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

/**
 * `brokers` > 1: Kafka is a plaintext cluster of that many nodes, each in a network namespace of its own on a bridge
 * (IPT_STACK_NETNS=on: it fails rather than fall back to loopback, where no host can be cut off).
 */
export async function startPrivateStack(opts: { kafkaHeap?: string; brokers?: number; log?: (line: string) => void } = {}): Promise<PrivateStack> {
  const log = opts.log ?? (() => undefined);
  const brokers = opts.brokers ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'ipt-chaos-stack-'));
  const [kafkaPort, kafkaControllerPort, registryPort, registryStorePort, clickhouseHttpPort, clickhouseTcpPort, kafkaInternalPort] = await freePorts(7);
  const env: NodeJS.ProcessEnv = {
    IPT_STACK_DIR: dir,
    IPT_KAFKA_PORT: String(kafkaPort),
    IPT_KAFKA_CONTROLLER_PORT: String(kafkaControllerPort),
    IPT_REGISTRY_PORT: String(registryPort),
    IPT_REGISTRY_STORE_PORT: String(registryStorePort),
    IPT_CLICKHOUSE_HTTP_PORT: String(clickhouseHttpPort),
    IPT_CLICKHOUSE_TCP_PORT: String(clickhouseTcpPort),
    IPT_KAFKA_HEAP: opts.kafkaHeap ?? (brokers > 1 ? '384m' : '512m'),
    IPT_REGISTRY_STORAGE: 'postgresql',
    ...(brokers > 1 ? { IPT_STACK_BROKERS: String(brokers), IPT_STACK_NETNS: 'on', IPT_KAFKA_INTERNAL_PORT: String(kafkaInternalPort), IPT_STACK_SUBNET: freeSubnet() } : {}),
  };
  const cfg = stackConfig(env);
  let layout: ClusterLayout | undefined;
  try {
    layout = brokers > 1 ? clusterLayout(cfg) : undefined;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
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
    layout,
    hostNamespace(name) {
      if (!stack.layout) throw new Error('host namespaces need the private stack as a cluster (brokers > 1)');
      return hostNamespace(stack.layout, name);
    },
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
        // Before the cluster's own teardown, which deletes the bridge but knows nothing of these.
        if (stack.layout) {
          try {
            const gone = teardownHostNamespaces(stack.layout);
            if (gone.length) log(`private stack: host namespaces ${gone.join(', ')} removed`);
          } catch (err) {
            log(`private stack: removing host namespaces failed: ${(err as Error).message}`);
          }
        }
        const stopped = await stackDown(cfg, { wipe: true }).then(
          () => true,
          (err: Error) => (log(`private stack: stopping failed: ${err.message}`), false),
        );
        // A namespace goes away a moment after `ip netns del` (later still while a process in it exits), so the
        // teardown can find a veth it was about to delete gone already and stop there: once more, it skips what is gone.
        if (layout) {
          await sleep(1000);
          try {
            teardownNetwork(layout);
            if (!stopped) log('private stack: the cluster\'s namespaces and bridge removed on a second try');
          } catch (err) {
            log(`private stack: removing the cluster's namespaces failed: ${(err as Error).message}`);
          }
        }
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

