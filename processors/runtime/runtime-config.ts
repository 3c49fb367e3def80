import { hostname } from 'node:os';
import { ConfigError } from './config-error.ts';
import { processKafkaSecurity, type KafkaSecurity } from './kafka-security.ts';
import { clickhouseCredentials, registryCredentials } from './service-credentials.ts';

export { ConfigError };

/** Settings shared by every processor process, read and validated once at start-up. */
export interface RuntimeConfig {
  brokers: string[];
  /** TLS and SASL for every Kafka client (IPT_KAFKA_SECURITY_PROTOCOL and friends). */
  security: KafkaSecurity;
  registryUrl: string;
  clientId: string;
  instanceId: string;
  exactlyOnce: boolean;
  batchSize: number;
  maxInFlightBatches: number;
  concurrency: number;
  partitionsConsumedConcurrently: number;
  /** The consumer group session: a member silent this long is dropped (heartbeats go out ten times per session). */
  sessionTimeoutMs: number;
  metricsPort: number | undefined;
  logLevel: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name}=${raw}: expected an integer ≥ ${min}`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name}=${raw}: expected true or false`);
}

export function runtimeConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  const brokers = (env.IPT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of brokers) if (!/^[^:\s]+:\d+$/.test(b)) throw new ConfigError(`IPT_KAFKA_BROKERS: "${b}" is not host:port`);
  // Checked here so a wrong security setting stops the process before any connection.
  const security = processKafkaSecurity(env);
  registryCredentials(env);
  clickhouseCredentials(env);
  const registryUrl = env.IPT_REGISTRY_URL ?? 'http://127.0.0.1:8081';
  try {
    new URL(registryUrl);
  } catch {
    throw new ConfigError(`IPT_REGISTRY_URL=${registryUrl} is not a URL`);
  }
  const metricsRaw = env.IPT_METRICS_PORT;
  const exactlyOnce = bool(env, 'IPT_EXACTLY_ONCE', false);
  const partitionsConsumedConcurrently = int(env, 'IPT_PARTITIONS_CONCURRENTLY', 1);
  // One transactional producer runs one transaction at a time: two partitions' batches would interleave in it.
  if (exactlyOnce && partitionsConsumedConcurrently > 1) {
    throw new ConfigError(`IPT_PARTITIONS_CONCURRENTLY=${partitionsConsumedConcurrently} with IPT_EXACTLY_ONCE=true: exactly-once processes one partition at a time per process; set IPT_PARTITIONS_CONCURRENTLY=1 and scale out with more instances`);
  }
  return {
    brokers,
    security,
    registryUrl,
    clientId: env.IPT_CLIENT_ID ?? 'instruct-pt',
    instanceId: env.IPT_INSTANCE_ID ?? `${hostname()}-0`,
    exactlyOnce,
    batchSize: int(env, 'IPT_BATCH_SIZE', 500),
    maxInFlightBatches: int(env, 'IPT_MAX_INFLIGHT_BATCHES', 4),
    concurrency: int(env, 'IPT_CONCURRENCY', 64),
    partitionsConsumedConcurrently,
    sessionTimeoutMs: int(env, 'IPT_SESSION_TIMEOUT_MS', 30_000, 6_000),
    metricsPort: metricsRaw === undefined || metricsRaw === '' ? undefined : int(env, 'IPT_METRICS_PORT', 0, 0),
    logLevel: env.IPT_LOG_LEVEL ?? 'info',
    ...overrides,
  };
}
