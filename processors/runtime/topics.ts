import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from './logger.ts';
import { setting } from './settings.ts';
import { ConfigError } from './config-error.ts';
import { accessDenied } from './kafka-access.ts';

export interface TopicSpec {
  topic: string;
  partitions: number;
  config?: Record<string, string>;
}

/** What an existing topic has that a stage did not ask for: fewer partitions or fewer replicas. */
export interface TopicMismatch {
  topic: string;
  partitions: { wanted: number; actual: number };
  replicas: { wanted: number; actual: number };
}

/**
 * IPT_TOPIC_REPLICATION_FACTOR, or min(3, brokers in the cluster): three copies where there are three brokers, and
 * the one there is on a single-broker stack.
 */
export function replicationFactor(brokers: number, env: NodeJS.ProcessEnv = process.env): number {
  const n = setting('IPT_TOPIC_REPLICATION_FACTOR', env);
  if (n === undefined) return Math.max(1, Math.min(3, brokers));
  if (n > brokers) throw new ConfigError(`IPT_TOPIC_REPLICATION_FACTOR=${n} but the cluster has ${brokers} broker${brokers === 1 ? '' : 's'}`);
  return n;
}

/**
 * Creates the topics that are missing (the broker does not auto-create) with the replication factor above; existing
 * ones are left as they are and returned when they have fewer partitions or replicas than asked for, for the caller
 * to report by name.
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[], env: NodeJS.ProcessEnv = process.env): Promise<TopicMismatch[]> {
  const existing = new Set(await admin.listTopics());
  const { brokers } = await admin.describeCluster();
  const rf = replicationFactor(brokers.length, env);
  const wanted = new Map<string, TopicSpec>();
  for (const s of specs) if (!existing.has(s.topic) && !wanted.has(s.topic)) wanted.set(s.topic, s);
  if (wanted.size > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [...wanted.values()].map((s) => ({
          topic: s.topic,
          numPartitions: s.partitions,
          replicationFactor: rf,
          configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Another process may have created it between listTopics and createTopics: then wait, as the creator does, until
      // every partition has a leader, or the first produce or join here fails with "not the leader". On a cluster, the
      // broker kafkajs asks for the new topics' leaders may not know them yet (UNKNOWN_TOPIC_OR_PARTITION, which it
      // does not retry): they were created, so wait the same way.
      const e = err as Error & { type?: string };
      if (!/already exists/i.test(e.message) && e.type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw accessDenied(err, { creates: [...wanted.keys()] }) ?? err;
      await leadersElected(admin, [...wanted.keys()]);
    }
  }
  const old = [...new Set(specs.filter((s) => existing.has(s.topic)).map((s) => s.topic))];
  if (old.length === 0) return [];
  const meta = await admin.fetchTopicMetadata({ topics: old });
  const mismatches: TopicMismatch[] = [];
  for (const t of meta.topics) {
    const partitionsWanted = Math.max(...specs.filter((s) => s.topic === t.name).map((s) => s.partitions));
    const replicas = Math.min(...t.partitions.map((p) => p.replicas.length));
    if (t.partitions.length < partitionsWanted || replicas < rf) {
      mismatches.push({ topic: t.name, partitions: { wanted: partitionsWanted, actual: t.partitions.length }, replicas: { wanted: rf, actual: replicas } });
    }
  }
  return mismatches;
}

/** One line per mismatch, naming the topic and what differs. */
export function describeMismatch(m: TopicMismatch): string {
  const parts: string[] = [];
  if (m.partitions.actual < m.partitions.wanted) parts.push(`${m.partitions.actual} partitions where ${m.partitions.wanted} are wanted (fewer instances can share it)`);
  if (m.replicas.actual < m.replicas.wanted) parts.push(`replication ${m.replicas.actual} where ${m.replicas.wanted} is wanted (a broker loss can lose it)`);
  return `topic ${m.topic} exists with ${parts.join(' and ')}`;
}

async function leadersElected(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const meta = await admin.fetchTopicMetadata({ topics }).catch(() => undefined);
    if (meta && meta.topics.length === topics.length && meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leader for every partition after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Creates a processor's topics with a client of its own, logging (not failing on) existing ones that differ. */
export async function ensureProcessorTopics(kafka: Kafka, specs: TopicSpec[], logger: Pick<Logger, 'warn'>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const m of await ensureTopics(admin, specs)) logger.warn({ topic: m.topic }, describeMismatch(m));
  } finally {
    await admin.disconnect();
  }
}
