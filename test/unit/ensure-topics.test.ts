import { describe, expect, it } from 'vitest';
import type { Admin } from 'kafkajs';
import { ensureTopics } from '../../processors/runtime/topics.ts';

/**
 * The admin calls ensureTopics makes, answered as a 3-node cluster answers right after a topic is created: the broker
 * kafkajs asks for the new topic's leaders does not know it yet, then it does.
 */
function justCreated(createError: Error & { type?: string }) {
  let metadataCalls = 0;
  const admin = {
    listTopics: async () => [],
    describeCluster: async () => ({ brokers: [{}, {}, {}] }),
    createTopics: async () => {
      throw createError;
    },
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => {
      if (++metadataCalls < 3) throw Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
      return { topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 1, replicas: [1, 2, 3] }] })) };
    },
  };
  return { admin: admin as unknown as Admin, calls: () => metadataCalls };
}

describe('ensureTopics on a cluster', () => {
  it('a topic created whose leaders the asked broker does not know yet is waited for, not reported as a failure', async () => {
    const { admin, calls } = justCreated(Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' }));
    await expect(ensureTopics(admin, [{ topic: 't', partitions: 1 }], {})).resolves.toEqual([]);
    expect(calls()).toBe(3);
  });

  it('any other failure to create is reported', async () => {
    const { admin } = justCreated(Object.assign(new Error('Invalid replication factor'), { type: 'INVALID_REPLICATION_FACTOR' }));
    await expect(ensureTopics(admin, [{ topic: 't', partitions: 1 }], {})).rejects.toThrow(/Invalid replication factor/);
  });
});
