import { resolve } from 'node:path';
import { readClusterRecord } from './cluster-record.ts';
import { clusterBrokers } from './cluster-layout.ts';

/** The services `stack up` can start; `registry` brings its PostgreSQL store along. */
export type StackServiceName = 'kafka' | 'registry' | 'clickhouse';
const SERVICE_NAMES: readonly StackServiceName[] = ['kafka', 'registry', 'clickhouse'];

/** Where the native stack lives and which loopback ports it binds; every value can be set by environment. */
export interface StackConfig {
  dir: string;
  kafkaPort: number;
  kafkaControllerPort: number;
  /** The inter-broker listener of a multi-node or secure cluster (unused by the single PLAINTEXT broker). */
  kafkaInternalPort: number;
  registryPort: number;
  /** Where the registry keeps schemas: a PostgreSQL of the stack's own (durable), or memory. */
  registryStorage: 'postgresql' | 'memory';
  registryStorePort: number;
  clickhouseHttpPort: number;
  clickhouseTcpPort: number;
  kafkaVersion: string;
  registryModule: string;
  registryVersion: string;
  kafkaHeap: string;
  /** Kafka nodes: 1 is the single PLAINTEXT broker everything else relies on; more make a replicated KRaft cluster. */
  brokers: number;
  /** SASL_SSL (SCRAM) client listener, mutual TLS between nodes, ACLs enforced. */
  secure: boolean;
  /** Cluster nodes in network namespaces of their own: auto (when usable), on (required) or off (loopback ports). */
  netns: 'auto' | 'on' | 'off';
  /** First three octets of the cluster's /24 when in namespaces; unset: derived from the stack folder. */
  subnet: string | undefined;
  services: StackServiceName[];
}

/** Node counts a cluster may have: at least one, and few enough for a 2-core machine. */
export const MAX_BROKERS = 5;

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name}=${raw} is not a TCP port (1-65535)`);
  return n;
}

function storage(raw: string | undefined): 'postgresql' | 'memory' {
  if (raw === undefined || raw === '' || raw === 'postgresql') return 'postgresql';
  if (raw === 'memory') return 'memory';
  throw new Error(`IPT_REGISTRY_STORAGE=${raw}: expected postgresql or memory`);
}

function brokerCount(raw: string | undefined, recorded: number | undefined): number {
  if (raw === undefined || raw === '') return recorded ?? 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_BROKERS) throw new Error(`IPT_STACK_BROKERS=${raw}: expected a node count from 1 to ${MAX_BROKERS}`);
  return n;
}

function flag(name: string, raw: string | undefined, recorded: boolean | undefined): boolean {
  if (raw === undefined || raw === '') return recorded ?? false;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name}=${raw}: expected true or false`);
}

function netnsMode(raw: string | undefined): 'auto' | 'on' | 'off' {
  if (raw === undefined || raw === '' || raw === 'auto') return 'auto';
  if (raw === 'on' || raw === 'off') return raw;
  throw new Error(`IPT_STACK_NETNS=${raw}: expected auto, on or off`);
}

function subnet(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const octets = raw.split('.');
  if (octets.length !== 3 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) throw new Error(`IPT_STACK_SUBNET=${raw}: expected the first three octets of a /24, e.g. 10.77.0`);
  return raw;
}

function services(raw: string | undefined): StackServiceName[] {
  if (raw === undefined || raw === '' || raw === 'all') return [...SERVICE_NAMES];
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !SERVICE_NAMES.includes(n as StackServiceName));
  if (bad.length || names.length === 0) throw new Error(`IPT_STACK_SERVICES=${raw}: expected a comma-separated list of ${SERVICE_NAMES.join(', ')} (or all)`);
  return SERVICE_NAMES.filter((n) => names.includes(n));
}

function heap(raw: string | undefined, fallback: string): string {
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9]\d*[kmg]$/i.test(raw)) throw new Error(`IPT_KAFKA_HEAP=${raw}: expected a JVM size such as 384m or 1g`);
  return raw;
}

export function stackConfig(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): StackConfig {
  const dir = resolve(root, env.IPT_STACK_DIR ?? '.stack');
  // A folder that already holds a cluster keeps its shape when the environment does not say otherwise, so that
  // `status`, `down` and later `up`s need no flags repeated.
  const recorded = readClusterRecord(dir);
  const brokers = brokerCount(env.IPT_STACK_BROKERS, recorded?.brokers);
  const kafkaPort = port(env, 'IPT_KAFKA_PORT', 9092);
  return {
    dir,
    kafkaPort,
    kafkaControllerPort: port(env, 'IPT_KAFKA_CONTROLLER_PORT', 9093),
    kafkaInternalPort: port(env, 'IPT_KAFKA_INTERNAL_PORT', 9094),
    registryPort: port(env, 'IPT_REGISTRY_PORT', 8081),
    registryStorage: storage(env.IPT_REGISTRY_STORAGE),
    registryStorePort: port(env, 'IPT_REGISTRY_STORE_PORT', 5433),
    clickhouseHttpPort: port(env, 'IPT_CLICKHOUSE_HTTP_PORT', 8123),
    clickhouseTcpPort: port(env, 'IPT_CLICKHOUSE_TCP_PORT', 9000),
    kafkaVersion: '4.4.0',
    registryModule: 'github.com/axonops/axonops-schema-registry',
    registryVersion: 'v0.2.1',
    // Several JVMs share two cores and the memory: cluster nodes get small heaps.
    kafkaHeap: heap(env.IPT_KAFKA_HEAP, brokers > 1 ? '384m' : '1g'),
    brokers,
    secure: flag('IPT_STACK_SECURE', env.IPT_STACK_SECURE, recorded?.secure),
    netns: netnsMode(env.IPT_STACK_NETNS),
    subnet: subnet(env.IPT_STACK_SUBNET),
    services: services(env.IPT_STACK_SERVICES),
  };
}

/** Anything but the single PLAINTEXT broker runs as a cluster (per-node folders, listeners, optional security). */
export function isCluster(cfg: StackConfig): boolean {
  return cfg.brokers > 1 || cfg.secure;
}

/** The client-side view of a running stack: what processors and tests connect to. */
export interface StackEndpoints {
  brokers: string[];
  registryUrl: string;
  clickhouseUrl: string;
  source: 'env' | 'native' | 'running' | 'testcontainers';
  /** How clients authenticate to a secured native cluster (its admin's IPT_KAFKA_* settings); none for plaintext. */
  kafkaSecurityEnv?: Record<string, string>;
}

export function nativeEndpoints(cfg: StackConfig): StackEndpoints {
  return {
    brokers: isCluster(cfg) ? clusterBrokers(cfg) : [`127.0.0.1:${cfg.kafkaPort}`],
    registryUrl: `http://127.0.0.1:${cfg.registryPort}`,
    clickhouseUrl: `http://127.0.0.1:${cfg.clickhouseHttpPort}`,
    source: 'native',
  };
}
