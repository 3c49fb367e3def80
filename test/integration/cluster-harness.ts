import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { stackConfig, type StackConfig } from '../../ops/stack/stack-config.ts';
import { stackDown, stackUp } from '../../ops/stack/stack.ts';
import { clusterClientEnv } from '../../ops/stack/cluster-env.ts';
import { clusterLayout } from '../../ops/stack/cluster-layout.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A 3-node secure Kafka cluster in a folder of its own, beside (never instead of) the shared stack. */
export interface ClusterHarness {
  cfg: StackConfig;
  /** host:port of every node's client listener. */
  brokers: string[];
  /** The super user's client settings (IPT_KAFKA_* variables, as in client.env). */
  adminEnv: Record<string, string>;
  /** ipt-app's client settings (app.env): authenticated, but authorized for nothing until ACLs are granted. */
  appEnv: Record<string, string>;
  /** The stack CA's certificate (PEM). */
  ca: string;
  net: 'netns' | 'loopback';
  /** Seconds the start (or the check of an already running cluster) took. */
  startupSeconds: number;
  /** A kafkajs client for one of the env objects (SASL_SSL, SCRAM-SHA-512, the stack's CA). */
  kafka(env: Record<string, string>, overrides?: Partial<KafkaConfig>): Kafka;
  /** Stops the nodes and removes the namespaces; the folder (data, credentials) stays for the next run. */
  stop(): Promise<void>;
}

/**
 * Starts (or reuses, when healthy) a 3-node SASL_SSL cluster in IPT_CLUSTER_TEST_DIR (default: a fixed folder under
 * the temp dir, so later runs reuse its data and certificates). Only Kafka is started; its ports are away from the
 * shared stack's, which matters only on loopback (in namespaces each node has an address of its own).
 */
export async function startSecureCluster(opts: { dir?: string; log?: (line: string) => void } = {}): Promise<ClusterHarness> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir ?? process.env.IPT_CLUSTER_TEST_DIR ?? join(tmpdir(), 'ipt-cluster-test');
  // Below the ephemeral range (32768+): on loopback a node's port could otherwise be taken by an outgoing connection.
  const base = Number(process.env.IPT_CLUSTER_TEST_PORT ?? '29092');
  const cfg = stackConfig({
    ...process.env,
    IPT_STACK_DIR: dir,
    IPT_STACK_SERVICES: 'kafka',
    IPT_STACK_BROKERS: '3',
    IPT_STACK_SECURE: 'true',
    IPT_KAFKA_PORT: String(base),
    IPT_KAFKA_CONTROLLER_PORT: String(base + 1),
    IPT_KAFKA_INTERNAL_PORT: String(base + 2),
  });
  seedKafkaJars(cfg);
  const t0 = Date.now();
  try {
    await stackUp(cfg, (l) => log(`cluster: ${l}`));
  } catch (err) {
    // Leave no namespaces behind; the folder stays for its logs.
    await stackDown(cfg).catch(() => undefined);
    throw err;
  }
  const adminEnv = clusterClientEnv(cfg, 'admin');
  const appEnv = clusterClientEnv(cfg, 'app');
  const ca = readFileSync(adminEnv.IPT_KAFKA_SSL_CA_FILE!, 'utf8');
  const kafka = (env: Record<string, string>, overrides: Partial<KafkaConfig> = {}) =>
    new Kafka({
      brokers: env.IPT_KAFKA_BROKERS!.split(','),
      clientId: 'ipt-cluster-test',
      logLevel: logLevel.NOTHING,
      ssl: { ca: [ca] },
      sasl: { mechanism: 'scram-sha-512', username: env.IPT_KAFKA_SASL_USERNAME!, password: env.IPT_KAFKA_SASL_PASSWORD! },
      ...overrides,
    });
  try {
    await allPartitionsLed(kafka(adminEnv), log);
  } catch (err) {
    await stackDown(cfg).catch(() => undefined);
    throw err;
  }
  const startupSeconds = (Date.now() - t0) / 1000;
  return {
    cfg,
    brokers: adminEnv.IPT_KAFKA_BROKERS!.split(','),
    adminEnv,
    appEnv,
    ca,
    net: clusterLayout(cfg).net,
    startupSeconds,
    kafka,
    stop: () => stackDown(cfg, {}, (l) => log(`cluster: ${l}`)),
  };
}

/**
 * Nodes answer their health check before every partition has a leader again: a folder reused across runs holds the
 * topics of every earlier run, and on two busy cores their elections can take minutes, during which any metadata
 * request for all topics fails (LEADER_NOT_AVAILABLE). Tests start once every partition is led.
 */
async function allPartitionsLed(kafka: Kafka, log: (line: string) => void, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const topics = await admin.listTopics();
      const md = await admin.fetchTopicMetadata({ topics });
      const unled = md.topics.reduce((n, t) => n + t.partitions.filter((p) => p.leader < 0).length, 0);
      if (unled === 0) return;
      last = `${unled} partitions without a leader`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    log(`cluster: waiting for partition leaders (${last})`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`the cluster's partitions did not all get a leader within ${timeoutMs / 1000} s: ${last}`);
}

/** Links the repo stack's resolved Kafka jars, when there, instead of resolving them again (read only). */
function seedKafkaJars(cfg: StackConfig): void {
  const rel = join('kafka', `libs-${cfg.kafkaVersion}`);
  const src = join(stackConfig(process.env, REPO).dir, rel);
  const dst = join(cfg.dir, rel);
  const complete = existsSync(src) && readdirSync(src).some((f) => f.startsWith('log4j-slf4j-impl-'));
  if (!complete) return;
  // A link left by a run from another checkout points elsewhere, or nowhere (that checkout is gone): link again.
  const link = lstatSync(dst, { throwIfNoEntry: false });
  if (link?.isSymbolicLink() && readlinkSync(dst) !== src) unlinkSync(dst);
  else if (link) return;
  mkdirSync(dirname(dst), { recursive: true });
  symlinkSync(src, dst);
}
