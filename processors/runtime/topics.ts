import type { Admin } from 'kafkajs';

export interface TopicSpec {
  topic: string;
  partitions: number;
  config?: Record<string, string>;
}

/** Creates the topics that are missing (the broker does not auto-create); existing ones are left as they are. */
export async function ensureTopics(admin: Admin, specs: TopicSpec[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = new Map<string, TopicSpec>();
  for (const s of specs) if (!existing.has(s.topic) && !wanted.has(s.topic)) wanted.set(s.topic, s);
  if (wanted.size === 0) return;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [...wanted.values()].map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: 1,
        configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  } catch (err) {
    // Another process may have created it between listTopics and createTopics: then wait, as the creator does, until
    // every partition has a leader, or the first produce or join here fails with "not the leader".
    if (!/already exists/i.test((err as Error).message)) throw err;
    await leadersElected(admin, [...wanted.keys()]);
  }
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
