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
    // Another process may have created it between listTopics and createTopics.
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
}
