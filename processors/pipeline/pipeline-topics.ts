import type { TopicSpec } from '../runtime/topics.ts';
import { cutStages, stageNode, TOPICS, type TopicKey } from './topology.ts';

/** The pipeline's topics and processor (consumer group) names, all under one prefix so several pipelines can share a cluster. */
export interface PipelineTopics {
  prefix: string;
  runs: string;
  raw: string;
  requests: string;
  results: string;
  pool: string;
  augmented: string;
  general: string;
  mixed: string;
  mixerState: string;
  metrics: string;
  evalRecords: string;
}

export function pipelineTopics(prefix = 'ipt'): PipelineTopics {
  if (!/^[A-Za-z0-9._-]+$/.test(prefix)) throw new Error(`topic prefix "${prefix}" must be letters, digits, ".", "_" or "-"`);
  return {
    prefix,
    runs: `${prefix}.runs`,
    raw: `${prefix}.raw.texts`,
    requests: `${prefix}.synth.requests`,
    results: `${prefix}.synth.results`,
    pool: `${prefix}.round.pool`,
    augmented: `${prefix}.augmented.texts`,
    general: `${prefix}.general.instructions`,
    mixed: `${prefix}.train.mixed`,
    mixerState: `${prefix}.mixer.state`,
    metrics: `${prefix}.metrics`,
    evalRecords: `${prefix}.eval.records`,
  };
}

export const STAGES = ['templating', 'templating-pool', 'synthesis', 'round-feedback', 'fused', 'mixing', 'evaluation', 'judge', 'clickhouse-sink'] as const;
export type StageName = (typeof STAGES)[number];

/**
 * How the stages are laid out: two cuts of one graph (topology.ts). Staged: every stage its own processor, chained
 * through Kafka (one process each, or several together). Fused: templating, synthesis, round feedback and mixing
 * chained in memory in one processor over the raw texts (the 'fused' stage), with evaluation and the ClickHouse sink
 * as before.
 */
export type Topology = 'staged' | 'fused';
export const TOPOLOGIES: Record<Topology, readonly StageName[]> = { staged: cutStages('staged'), fused: cutStages('fused') };
/** The stages the fused stage replaces: running both over one prefix would process every text twice. */
export const FUSED_STAGES: readonly StageName[] = stageNode('fused').fuses!;

export const stageGroup = (t: PipelineTopics, stage: StageName) => `${t.prefix}.${stage}`;

const RETAIN = { 'retention.ms': '-1', 'cleanup.policy': 'delete' };
const COMPACT = { 'cleanup.policy': 'compact' };

/**
 * Every topic of the graph with its partitions and retention, and a dead-letter topic per stage. Raw and intermediate
 * topics are kept forever (replay re-runs rounds from them); runs and the changelogs are compacted.
 */
export function topicSpecs(t: PipelineTopics, partitions = 4): TopicSpec[] {
  return [
    ...(Object.entries(TOPICS) as [TopicKey, (typeof TOPICS)[TopicKey]][]).map(([key, node]) => ({
      topic: t[key],
      partitions: node.partitions === 1 ? 1 : partitions,
      config: node.retention === 'compact' ? COMPACT : RETAIN,
    })),
    ...STAGES.map((s) => ({ topic: `${stageGroup(t, s)}.dlq`, partitions: 1, config: RETAIN })),
  ];
}

/** Record keys: "<runId>/<id>", so any record (a dead letter too) names its run. */
export const recordKey = (runId: string, id: string) => `${runId}/${id}`;
export const runOfKey = (key: string | null | undefined) => (key ? key.slice(0, Math.max(0, key.indexOf('/'))) : '');

/**
 * The metrics topic as a processor output: metric events go out batched per run (one record per run and input
 * chunk, schema metric-event-batch), a few records where there would be one per text.
 */
export const metricsOutput = (t: PipelineTopics) => ({
  topic: t.metrics,
  schema: 'metric-event-batch',
  batched: { key: (emitKey: string | null) => recordKey(runOfKey(emitKey), 'metric-events') },
});
