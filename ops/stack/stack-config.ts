import { resolve } from 'node:path';

/** Where the native stack lives and which loopback ports it binds; every value can be set by environment. */
export interface StackConfig {
  dir: string;
  kafkaPort: number;
  kafkaControllerPort: number;
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
}

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

export function stackConfig(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): StackConfig {
  return {
    dir: resolve(root, env.IPT_STACK_DIR ?? '.stack'),
    kafkaPort: port(env, 'IPT_KAFKA_PORT', 9092),
    kafkaControllerPort: port(env, 'IPT_KAFKA_CONTROLLER_PORT', 9093),
    registryPort: port(env, 'IPT_REGISTRY_PORT', 8081),
    registryStorage: storage(env.IPT_REGISTRY_STORAGE),
    registryStorePort: port(env, 'IPT_REGISTRY_STORE_PORT', 5433),
    clickhouseHttpPort: port(env, 'IPT_CLICKHOUSE_HTTP_PORT', 8123),
    clickhouseTcpPort: port(env, 'IPT_CLICKHOUSE_TCP_PORT', 9000),
    kafkaVersion: '3.9.1',
    registryModule: 'github.com/axonops/axonops-schema-registry',
    registryVersion: 'v0.2.1',
    kafkaHeap: env.IPT_KAFKA_HEAP ?? '1g',
  };
}

/** The client-side view of a running stack: what processors and tests connect to. */
export interface StackEndpoints {
  brokers: string[];
  registryUrl: string;
  clickhouseUrl: string;
  source: 'env' | 'native' | 'testcontainers';
}

export function nativeEndpoints(cfg: StackConfig): StackEndpoints {
  return {
    brokers: [`127.0.0.1:${cfg.kafkaPort}`],
    registryUrl: `http://127.0.0.1:${cfg.registryPort}`,
    clickhouseUrl: `http://127.0.0.1:${cfg.clickhouseHttpPort}`,
    source: 'native',
  };
}
