import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';

export interface TopicEnd {
  partition: number;
  low: string;
  high: string;
}

/**
 * Each partition's first and end offsets. kafkajs's admin gives up on a leader's retriable answer
 * (NOT_LEADER_OR_FOLLOWER just after a topic was created or a node died, LEADER_NOT_AVAILABLE during an election) and
 * keeps the stale leader in its metadata, so each try here uses a fresh admin client, which reads current metadata.
 */
export async function topicEnds(kafka: Kafka, topic: string, deadlineMs = 60_000): Promise<TopicEnd[]> {
  const deadline = Date.now() + deadlineMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const os = await admin.fetchTopicOffsets(topic);
      return os.map((o) => ({ partition: o.partition, low: o.low, high: o.high }));
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() + wait > deadline) throw err;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(wait);
  }
}
