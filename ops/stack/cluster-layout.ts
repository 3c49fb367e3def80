import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { StackConfig } from './stack-config.ts';
import { readClusterRecord, type ClusterRecord } from './cluster-record.ts';
import { netnsUsable } from './netns.ts';

/** One KRaft node (broker and controller in one JVM) of the local cluster. */
export interface ClusterNode {
  id: number;
  /** kafka-1, kafka-2, …: also the DNS name in its certificate. */
  name: string;
  /** The address it listens on and clients connect to. */
  host: string;
  clientPort: number;
  internalPort: number;
  controllerPort: number;
  dir: string;
  dataDir: string;
  propsFile: string;
  logFile: string;
  pidFile: string;
  /** Network namespace and the two ends of its veth pair (netns only). */
  netns?: { name: string; hostVeth: string; nsVeth: string };
}

export interface ClusterLayout {
  brokers: number;
  secure: boolean;
  net: 'netns' | 'loopback';
  /** The host side of the namespaces' network (netns only). */
  bridge?: { name: string; address: string; subnet: string };
  ports: ClusterRecord['ports'];
  /** `<stack dir>/kafka`: shared files (TLS material, passwords, client env files, log4j2 config). */
  kafkaDir: string;
  nodes: ClusterNode[];
}

/** In loopback mode the nodes share an address: node i's ports are the configured ones plus PORT_STEP × (i-1). */
export const PORT_STEP = 10;

/** Short per-folder tag: two stack folders get different namespaces, links and (by default) subnets. */
export function netTag(stackDir: string): { tag: string; octet: number } {
  const h = createHash('sha256').update(stackDir).digest('hex');
  return { tag: h.slice(0, 4), octet: parseInt(h.slice(4, 6), 16) };
}

/** Namespaces when usable (or required), else loopback; a recorded cluster keeps what it was created with. */
export function chooseNet(cfg: StackConfig): 'netns' | 'loopback' {
  if (cfg.netns === 'off') return 'loopback';
  if (netnsUsable()) return 'netns';
  if (cfg.netns === 'on') throw new Error('IPT_STACK_NETNS=on but network namespaces are not usable here (needs root and `ip netns`)');
  return 'loopback';
}

/** The cluster's nodes: from the folder's record when there is one, else from the configuration. */
export function clusterLayout(cfg: StackConfig, opts: { net?: 'netns' | 'loopback'; ignoreRecord?: boolean } = {}): ClusterLayout {
  const rec = opts.ignoreRecord ? undefined : readClusterRecord(cfg.dir);
  const net = opts.net ?? rec?.net ?? chooseNet(cfg);
  const brokers = rec?.brokers ?? cfg.brokers;
  const ports = rec?.ports ?? { client: cfg.kafkaPort, internal: cfg.kafkaInternalPort, controller: cfg.kafkaControllerPort };
  const { tag, octet } = netTag(cfg.dir);
  const subnet = rec?.subnet ?? cfg.subnet ?? `10.77.${octet}`;
  const kafkaDir = join(cfg.dir, 'kafka');
  const nodes: ClusterNode[] = [];
  for (let id = 1; id <= brokers; id++) {
    const dir = join(kafkaDir, `kafka-${id}`);
    // In namespaces every node has its own address, so all use the configured ports.
    const step = net === 'netns' ? 0 : PORT_STEP * (id - 1);
    nodes.push({
      id,
      name: `kafka-${id}`,
      host: net === 'netns' ? `${subnet}.${10 + id}` : '127.0.0.1',
      clientPort: ports.client + step,
      internalPort: ports.internal + step,
      controllerPort: ports.controller + step,
      dir,
      dataDir: join(dir, 'data'),
      propsFile: join(dir, 'server.properties'),
      logFile: join(dir, 'logs', 'server.log'),
      pidFile: join(dir, 'kafka.pid'),
      netns: net === 'netns' ? { name: `ipt-${tag}-k${id}`, hostVeth: `ipt${tag}h${id}`, nsVeth: `ipt${tag}n${id}` } : undefined,
    });
  }
  const layout: ClusterLayout = { brokers, secure: rec?.secure ?? cfg.secure, net, ports, kafkaDir, nodes };
  if (net === 'netns') layout.bridge = { name: `ipt${tag}br`, address: `${subnet}.1`, subnet };
  checkPorts(layout);
  return layout;
}

/** Client bootstrap addresses, host:port. */
export function clusterBrokers(cfg: StackConfig): string[] {
  return clusterLayout(cfg).nodes.map(nodeAddress);
}

export function nodeAddress(n: ClusterNode): string {
  return `${n.host}:${n.clientPort}`;
}

/** Loopback nodes share one address: no two listeners may land on the same port. */
function checkPorts(layout: ClusterLayout): void {
  const seen = new Map<string, string>();
  for (const n of layout.nodes) {
    for (const [what, p] of [['client', n.clientPort], ['internal', n.internalPort], ['controller', n.controllerPort]] as const) {
      if (p > 65535) throw new Error(`${n.name}'s ${what} port ${p} is past 65535: choose lower IPT_KAFKA_*PORT values`);
      const key = `${n.host}:${p}`;
      const other = seen.get(key);
      if (other) throw new Error(`${n.name}'s ${what} listener and ${other} would both bind ${key}: set IPT_KAFKA_PORT, IPT_KAFKA_INTERNAL_PORT and IPT_KAFKA_CONTROLLER_PORT apart (nodes step by ${PORT_STEP})`);
      seen.set(key, `${n.name}'s ${what} listener`);
    }
  }
}
