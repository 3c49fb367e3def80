import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StackConfig } from './stack-config.ts';
import type { ServiceStatus } from './stack.ts';
import { clusterLayout, nodeAddress, type ClusterLayout, type ClusterNode } from './cluster-layout.ts';
import { readClusterRecord, removeClusterRecord, writeClusterRecord } from './cluster-record.ts';
import { ADMIN_USER, APP_USER, ensureSecrets, secretsFile, type ClusterSecrets } from './cluster-secrets.ts';
import { ensureTls, type ClusterTls } from './cluster-tls.ts';
import { nodeProperties, scramFormatArgs } from './cluster-properties.ts';
import { clientEnvPath, writeClientEnvFiles } from './cluster-env.ts';
import { nodeHealthy, portOpen, type ClusterAuth } from './cluster-health.ts';
import { formatStorage, KAFKA_MAIN, kafkaJvmArgs, newClusterId, writeLog4j2 } from './kafka-jvm.ts';
import { inNamespace, networkPresent, nodeLinkUp, setNodeLink, setupNetwork, teardownHostNamespaces, teardownNetwork } from './netns.ts';
import { installKafka } from './install.ts';
import { isAlive, readPid, startDetached, stopPid, tail } from './processes.ts';

type Log = (line: string) => void;

/** Three JVMs starting at once on two cores, TLS included: generous. */
const START_TIMEOUT_MS = 240_000;

/**
 * Brings the folder's Kafka cluster up: network namespaces (or loopback ports), TLS material and passwords
 * (secure), per-node configuration, storage formatted once, every node not already healthy started, then waits
 * until each node answers. Idempotent: a healthy cluster is left alone.
 */
export async function clusterUp(cfg: StackConfig, log: Log = () => undefined): Promise<ServiceStatus[]> {
  let layout = checkedLayout(cfg, log);
  const libs = installKafka(cfg);
  if (layout.net === 'netns') {
    try {
      setupNetwork(layout);
    } catch (err) {
      if (cfg.netns === 'on' || readClusterRecord(cfg.dir)) throw err;
      log(`kafka: network namespaces could not be set up (${(err as Error).message}); nodes run on 127.0.0.1`);
      try {
        teardownNetwork(layout); // whatever part of it was made
      } catch {
        // nothing more to undo
      }
      layout = clusterLayout(cfg, { net: 'loopback', ignoreRecord: true });
    }
  }
  const clusterId = readClusterRecord(cfg.dir)?.clusterId ?? newClusterId();
  writeClusterRecord(cfg.dir, { brokers: layout.brokers, secure: layout.secure, net: layout.net, subnet: layout.bridge?.subnet, ports: layout.ports, clusterId });

  const sec = security(layout);
  const jvm = nodeJvm(cfg, libs, layout);
  await Promise.all(
    layout.nodes.map(async (node) => {
      mkdirSync(join(node.dir, 'logs'), { recursive: true });
      // Owner-only: it holds the store password (and PLAIN's user passwords when secure).
      writeFileSync(node.propsFile, nodeProperties(layout, node, sec), { mode: 0o600 });
      if (!existsSync(join(node.dataDir, 'meta.properties'))) {
        log(`${node.name}: formatting ${node.dataDir}`);
        await formatStorage(jvm, node.propsFile, clusterId, sec ? scramFormatArgs(sec.secrets) : []);
      }
    }),
  );

  const auth = authFor(layout, sec?.secrets, sec?.tls);
  const started = new Map<number, number>();
  const launched: ClusterNode[] = [];
  try {
    for (const node of layout.nodes) {
      if (await nodeHealthy(node, auth)) {
        log(`${node.name}: already healthy at ${nodeAddress(node)}`);
        continue;
      }
      const running = readPid(node.pidFile);
      if (running !== undefined && isAlive(running)) {
        log(`${node.name}: waiting for pid ${running} to become healthy`);
        started.set(node.id, running);
        continue;
      }
      started.set(node.id, await launch(node, jvm, log));
      launched.push(node);
    }
    await waitHealthy(layout, auth, started, log);
  } catch (err) {
    // Half a cluster is of no use and holds ports and memory: stop what this call started (logs stay).
    await Promise.all(launched.map((node) => stopPid(node.pidFile, 10_000)));
    throw err;
  }
  writeClientEnvFiles(cfg, layout, sec?.secrets, sec?.tls.caFile);
  if (layout.secure) log(`kafka: client settings in ${clientEnvPath(cfg, 'admin')} (admin) and ${clientEnvPath(cfg, 'app')} (${APP_USER})`);
  return clusterStatus(cfg);
}

/** Per node: healthy (answers itself), pid, address; isolated nodes are marked. */
export async function clusterStatus(cfg: StackConfig): Promise<ServiceStatus[]> {
  const layout = clusterLayout(cfg);
  const auth = savedAuth(layout);
  const reachable = networkPresent(layout);
  return Promise.all(
    layout.nodes.map(async (node) => {
      const pid = readPid(node.pidFile);
      const alive = pid !== undefined && isAlive(pid);
      const isolated = alive && (layout.net === 'netns' ? !nodeLinkUp(node) : paused(pid));
      return {
        name: node.name,
        healthy: alive && reachable && !isolated && (await nodeHealthy(node, auth)),
        pid: alive ? pid : undefined,
        endpoint: nodeAddress(node),
        log: node.logFile,
        note: isolated ? (layout.net === 'netns' ? 'isolated' : 'paused') : undefined,
      };
    }),
  );
}

/** Stops every node (by recorded pid), removes the namespaces and bridge; `wipe` deletes the nodes' data too. */
export async function clusterDown(cfg: StackConfig, opts: { wipe?: boolean } = {}, log: Log = () => undefined): Promise<void> {
  const layout = clusterLayout(cfg);
  // Paused nodes (isolateNode on loopback) must run again to see SIGTERM.
  for (const node of layout.nodes) signalIfAlive(node, 'SIGCONT');
  const stopped = await Promise.all(layout.nodes.map((node) => stopPid(node.pidFile, 30_000)));
  layout.nodes.forEach((node, i) => log(`${node.name}: ${stopped[i] ? 'stopped' : 'not running'}`));
  if (layout.net === 'netns') {
    // Hosts of client processes (a stage cut off in a chaos run) hang on the same bridge: they go first.
    const hosts = teardownHostNamespaces(layout);
    if (hosts.length > 0) log(`kafka: host namespaces ${hosts.join(', ')} removed`);
    teardownNetwork(layout);
    log(`kafka: network namespaces and bridge ${layout.bridge?.name} removed`);
  }
  if (opts.wipe) {
    for (const node of layout.nodes) rmSync(node.dataDir, { recursive: true, force: true });
    // The record goes too (a new shape may be chosen); passwords and TLS material stay.
    removeClusterRecord(cfg.dir);
    for (const who of ['admin', 'app'] as const) rmSync(clientEnvPath(cfg, who), { force: true });
  }
}

/** The folder's node i (1-based). */
export function clusterNode(cfg: StackConfig, i: number): ClusterNode {
  const node = clusterLayout(cfg).nodes[i - 1];
  if (!node) throw new Error(`the cluster in ${cfg.dir} has no node ${i}`);
  return node;
}

/** Kills node i (SIGKILL by default: a crash) and waits until the process is gone; returns its pid. */
export async function killNode(cfg: StackConfig, i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
  const node = clusterNode(cfg, i);
  const pid = readPid(node.pidFile);
  if (pid === undefined || !isAlive(pid)) throw new Error(`${node.name} is not running (pid file ${node.pidFile})`);
  if (signal !== 'SIGKILL') signalIfAlive(node, 'SIGCONT');
  process.kill(pid, signal);
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) throw new Error(`${node.name} (pid ${pid}) still runs 30 s after ${signal}`);
  return pid;
}

/** Starts node i again (its storage and configuration are kept) and waits until it answers; returns its pid. */
export async function startNode(cfg: StackConfig, i: number, opts: { timeoutMs?: number; log?: Log } = {}): Promise<number> {
  const layout = clusterLayout(cfg);
  const node = clusterNode(cfg, i);
  const log = opts.log ?? (() => undefined);
  // After `stack down` the namespaces are gone: recreate them (this also reconnects any isolated node).
  if (!networkPresent(layout)) setupNetwork(layout);
  let pid = readPid(node.pidFile);
  if (pid === undefined || !isAlive(pid)) pid = await launch(node, nodeJvm(cfg, installKafka(cfg), layout), log);
  await waitHealthy({ ...layout, nodes: [node] }, savedAuth(layout), new Map([[node.id, pid]]), log, opts.timeoutMs);
  return pid;
}

/**
 * Cuts node i off: in namespaces its host-side veth goes down (clients and the other nodes lose it, the process
 * runs on); on loopback, where no link can be cut, the process is paused (SIGSTOP) instead.
 */
export function isolateNode(cfg: StackConfig, i: number): 'network' | 'paused' {
  const node = clusterNode(cfg, i);
  if (node.netns) {
    setNodeLink(node, false);
    return 'network';
  }
  if (!signalIfAlive(node, 'SIGSTOP')) throw new Error(`${node.name} is not running`);
  return 'paused';
}

/** Undoes isolateNode. */
export function reconnectNode(cfg: StackConfig, i: number): 'network' | 'paused' {
  const node = clusterNode(cfg, i);
  if (node.netns) {
    setNodeLink(node, true);
    return 'network';
  }
  if (!signalIfAlive(node, 'SIGCONT')) throw new Error(`${node.name} is not running`);
  return 'paused';
}

/** The recorded layout when the request matches it (or nothing is formatted yet), else a clear refusal. */
function checkedLayout(cfg: StackConfig, log: Log): ClusterLayout {
  const rec = readClusterRecord(cfg.dir);
  if (!rec) return clusterLayout(cfg, { ignoreRecord: true });
  const recorded = clusterLayout(cfg);
  const formatted = recorded.nodes.some((n) => existsSync(join(n.dataDir, 'meta.properties')));
  if (rec.brokers !== cfg.brokers || rec.secure !== cfg.secure) {
    if (formatted) {
      throw new Error(
        `${cfg.dir} holds a ${rec.brokers}-node ${rec.secure ? 'secure ' : ''}cluster; asked for ${cfg.brokers} node(s)${cfg.secure ? ', secure' : ''}: ` +
          `run \`ipt stack down --wipe\` with IPT_STACK_DIR=${cfg.dir} first, or use another IPT_STACK_DIR`,
      );
    }
    removeClusterRecord(cfg.dir);
    return clusterLayout(cfg, { ignoreRecord: true });
  }
  const asked = { client: cfg.kafkaPort, internal: cfg.kafkaInternalPort, controller: cfg.kafkaControllerPort };
  if (JSON.stringify(asked) !== JSON.stringify(rec.ports)) log(`kafka: keeping the ports this cluster was created with (${JSON.stringify(rec.ports)}); \`stack down --wipe\` to change them`);
  return recorded;
}

function security(layout: ClusterLayout): { secrets: ClusterSecrets; tls: ClusterTls } | undefined {
  if (!layout.secure) return undefined;
  const secrets = ensureSecrets(layout.kafkaDir);
  return { secrets, tls: ensureTls(layout, secrets.store) };
}

function authFor(layout: ClusterLayout, secrets: ClusterSecrets | undefined, tls: ClusterTls | undefined): ClusterAuth | undefined {
  if (!layout.secure || !secrets || !tls) return undefined;
  return { username: ADMIN_USER, password: secrets.admin, caFile: tls.caFile };
}

/** Admin credentials of a cluster already set up (status, node restarts), without creating anything. */
function savedAuth(layout: ClusterLayout): ClusterAuth | undefined {
  if (!layout.secure || !existsSync(secretsFile(layout.kafkaDir))) return undefined;
  const secrets = ensureSecrets(layout.kafkaDir);
  return { username: ADMIN_USER, password: secrets.admin, caFile: join(layout.kafkaDir, 'tls', 'ca.pem') };
}

function nodeJvm(cfg: StackConfig, libs: string, layout: ClusterLayout): string[] {
  return kafkaJvmArgs(libs, writeLog4j2(layout.kafkaDir), cfg.kafkaHeap, { small: layout.brokers > 1 });
}

async function launch(node: ClusterNode, jvm: string[], log: Log): Promise<number> {
  // A dead node's ports held by something else would make it fail in a confusing way later.
  for (const port of [node.clientPort, node.internalPort, node.controllerPort]) {
    if (await portOpen(node.host, port)) throw new Error(`${node.name}: ${node.host}:${port} is already in use by another process; choose other IPT_KAFKA_*PORT values or IPT_STACK_DIR`);
  }
  const [cmd, args] = inNamespace(node, 'java', [...jvm, KAFKA_MAIN, node.propsFile]);
  const pid = startDetached(cmd, args, { cwd: node.dir, logFile: node.logFile, pidFile: node.pidFile });
  log(`${node.name}: starting at ${nodeAddress(node)} (pid ${pid}${node.netns ? `, netns ${node.netns.name}` : ''})`);
  return pid;
}

async function waitHealthy(layout: ClusterLayout, auth: ClusterAuth | undefined, started: Map<number, number>, log: Log, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Map(layout.nodes.filter((n) => started.has(n.id)).map((n) => [n.id, n]));
  while (pending.size > 0) {
    const nodes = [...pending.values()];
    const healthy = await Promise.all(nodes.map((n) => nodeHealthy(n, auth)));
    nodes.forEach((node, i) => {
      if (!healthy[i]) return;
      pending.delete(node.id);
      log(`${node.name}: healthy at ${nodeAddress(node)} (pid ${started.get(node.id)})`);
    });
    for (const node of pending.values()) {
      const pid = started.get(node.id)!;
      if (!isAlive(pid)) throw new Error(`${node.name} exited during start-up; see its log: ${node.logFile}\n${tail(node.logFile)}`);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      const names = [...pending.values()];
      throw new Error(`${names.map((n) => n.name).join(', ')} did not become healthy within ${timeoutMs / 1000}s; see ${names[0]!.logFile}\n${tail(names[0]!.logFile)}`);
    }
    await sleep(500);
  }
}

/** Stopped by SIGSTOP (state T in /proc/<pid>/stat): how isolateNode cuts off a loopback node. */
function paused(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  } catch {
    return false;
  }
}

function signalIfAlive(node: ClusterNode, signal: NodeJS.Signals): boolean {
  const pid = readPid(node.pidFile);
  if (pid === undefined || !isAlive(pid)) return false;
  process.kill(pid, signal);
  return true;
}
