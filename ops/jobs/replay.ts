import type { Kafka } from 'kafkajs';
import { stageGroup, type PipelineTopics, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { topicEnds } from '../../processors/runtime/topic-ends.ts';
import { consumedTopics, readersOf, TOPICS, type TopicKey } from '../../processors/pipeline/topology.ts';

/** Which stage consumes which topic: the stages a replay of that topic re-runs. */
export function consumersOf(t: PipelineTopics, topic: string): StageName[] {
  const key = (Object.keys(TOPICS) as TopicKey[]).find((k) => t[k] === topic);
  const stages = key ? readersOf(key) : [];
  if (stages.length === 0) throw new Error(`no pipeline stage reads ${topic} (replayable: ${consumedTopics().map((k) => t[k]).join(', ')})`);
  return stages;
}

export type ReplayFrom = { offset: bigint } | { timestamp: number } | 'earliest';

/** "earliest", an offset (an integer), or an ISO-8601 time. */
export function parseReplayFrom(raw: string): ReplayFrom {
  if (raw === 'earliest') return 'earliest';
  if (/^\d+$/.test(raw)) return { offset: BigInt(raw) };
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw new Error(`--from "${raw}": expected earliest, an offset (integer) or an ISO-8601 time`);
  return { timestamp: ms };
}

export interface ReplayResult {
  topic: string;
  groups: { group: string; partitions: { partition: number; offset: string }[] }[];
}

/**
 * Moves the consumer groups of the stages that read `topic` back to `from`, so they re-process what Kafka holds
 * from there when they next run. The stages must be stopped (Kafka refuses to move an active group's offsets).
 * Outputs are produced again under the same ids; ClickHouse keeps one row per id, and consumers key by id.
 */
export async function replayTopic(kafka: Kafka, topics: PipelineTopics, topic: string, from: ReplayFrom, only?: StageName): Promise<ReplayResult> {
  const stages = consumersOf(topics, topic).filter((s) => only === undefined || s === only);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await topicEnds(kafka, topic);
    let target: { partition: number; offset: string }[];
    if (from === 'earliest') target = ends.map((o) => ({ partition: o.partition, offset: o.low }));
    else if ('offset' in from) target = ends.map((o) => ({ partition: o.partition, offset: (from.offset < BigInt(o.low) ? BigInt(o.low) : from.offset > BigInt(o.high) ? BigInt(o.high) : from.offset).toString() }));
    else target = (await admin.fetchTopicOffsetsByTimestamp(topic, from.timestamp)).map((o) => ({ partition: o.partition, offset: o.offset }));
    const result: ReplayResult = { topic, groups: [] };
    const described = (await admin.describeGroups(stages.map((s) => stageGroup(topics, s)))).groups;
    // Of two topologies' readers (the raw topic's), move those that have run; if neither has, both.
    const known = stages.filter((s) => described.some((g) => g.groupId === stageGroup(topics, s) && g.state !== 'Dead'));
    for (const stage of known.length > 0 ? known : stages) {
      const groupId = stageGroup(topics, stage);
      const g = described.find((d) => d.groupId === groupId);
      if (g && g.members.length > 0) throw new Error(`stage ${stage} (group ${groupId}) is running with ${g.members.length} member(s): stop it before replaying ${topic}`);
      await admin.setOffsets({ groupId, topic, partitions: target });
      result.groups.push({ group: groupId, partitions: target });
    }
    return result;
  } finally {
    await admin.disconnect();
  }
}
