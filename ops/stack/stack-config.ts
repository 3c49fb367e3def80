import { resolve } from 'node:path';
import { readClusterRecord } from './cluster-record.ts';
import { clusterBrokers } from './cluster-layout.ts';

import { setting } from '../../processors/runtime/settings.ts';
import { STACK_SERVICE_NAMES, type StackServiceName } from '../../processors/runtime/settings.ts';

export type { StackServiceName };

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

/** Node counts a cluster may have: at least one, and few enough for a 2-core machine (IPT_STACK_BROKERS's bound). */

export function stackConfig(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): StackConfig {
  const dir = resolve(root, setting('IPT_STACK_DIR', env));
  // A folder that already holds a cluster keeps its shape when the environment does not say otherwise, so that
  // `status`, `down` and later `up`s need no flags repeated.
  const recorded = readClusterRecord(dir);
  const brokers = setting('IPT_STACK_BROKERS', env) ?? recorded?.brokers ?? 1;
  const kafkaPort = setting('IPT_KAFKA_PORT', env);
  return {
    dir,
    kafkaPort,
    kafkaControllerPort: setting('IPT_KAFKA_CONTROLLER_PORT', env),
    kafkaInternalPort: setting('IPT_KAFKA_INTERNAL_PORT', env),
    registryPort: setting('IPT_REGISTRY_PORT', env),
    registryStorage: setting('IPT_REGISTRY_STORAGE', env),
    registryStorePort: setting('IPT_REGISTRY_STORE_PORT', env),
    clickhouseHttpPort: setting('IPT_CLICKHOUSE_HTTP_PORT', env),
    clickhouseTcpPort: setting('IPT_CLICKHOUSE_TCP_PORT', env),
    kafkaVersion: '4.4.0',
    registryModule: 'github.com/axonops/axonops-schema-registry',
    registryVersion: 'v0.2.1',
    // Several JVMs share two cores and the memory: cluster nodes get small heaps.
    kafkaHeap: setting('IPT_KAFKA_HEAP', env) ?? (brokers > 1 ? '384m' : '1g'),
    brokers,
    secure: setting('IPT_STACK_SECURE', env) ?? recorded?.secure ?? false,
    netns: setting('IPT_STACK_NETNS', env),
    subnet: setting('IPT_STACK_SUBNET', env),
    services: [...setting('IPT_STACK_SERVICES', env)],
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
