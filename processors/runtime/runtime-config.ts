import { hostname } from 'node:os';
import { ConfigError } from './config-error.ts';
import { processKafkaSecurity, type KafkaSecurity } from './kafka-security.ts';
import { clickhouseCredentials, registryCredentials } from './service-credentials.ts';
import { setting } from './settings.ts';

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

export function runtimeConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  const brokers = setting('IPT_KAFKA_BROKERS', env);
  // Checked here so a wrong security setting stops the process before any connection.
  const security = processKafkaSecurity(env);
  registryCredentials(env);
  clickhouseCredentials(env);
  const registryUrl = setting('IPT_REGISTRY_URL', env);
  const exactlyOnce = setting('IPT_EXACTLY_ONCE', env);
  const partitionsConsumedConcurrently = setting('IPT_PARTITIONS_CONCURRENTLY', env);
  // One transactional producer runs one transaction at a time: two partitions' batches would interleave in it.
  if (exactlyOnce && partitionsConsumedConcurrently > 1) {
    throw new ConfigError(`IPT_PARTITIONS_CONCURRENTLY=${partitionsConsumedConcurrently} with IPT_EXACTLY_ONCE=true: exactly-once processes one partition at a time per process; set IPT_PARTITIONS_CONCURRENTLY=1 and scale out with more instances`);
  }
  return {
    brokers,
    security,
    registryUrl,
    clientId: setting('IPT_CLIENT_ID', env),
    instanceId: setting('IPT_INSTANCE_ID', env) ?? `${hostname()}-0`,
    exactlyOnce,
    batchSize: setting('IPT_BATCH_SIZE', env),
    maxInFlightBatches: setting('IPT_MAX_INFLIGHT_BATCHES', env),
    concurrency: setting('IPT_CONCURRENCY', env),
    partitionsConsumedConcurrently,
    sessionTimeoutMs: setting('IPT_SESSION_TIMEOUT_MS', env),
    metricsPort: setting('IPT_METRICS_PORT', env),
    logLevel: setting('IPT_LOG_LEVEL', env) ?? 'info',
    ...overrides,
  };
}
