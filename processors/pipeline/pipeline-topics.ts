import type { TopicSpec } from '../runtime/topics.ts';

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

export const STAGES = ['templating', 'templating-pool', 'synthesis', 'round-feedback', 'fused', 'mixing', 'evaluation', 'clickhouse-sink'] as const;
export type StageName = (typeof STAGES)[number];

/**
 * How the stages are laid out. Staged: every stage its own processor, chained through Kafka (one process each, or
 * several together). Fused: templating, synthesis, round feedback and mixing chained in memory in one processor over
 * the raw texts (the 'fused' stage), with evaluation and the ClickHouse sink as before.
 */
export const TOPOLOGIES = {
  staged: ['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing', 'evaluation', 'clickhouse-sink'],
  fused: ['fused', 'evaluation', 'clickhouse-sink'],
} as const satisfies Record<string, readonly StageName[]>;
export type Topology = keyof typeof TOPOLOGIES;
/** The stages the fused stage replaces: running both over one prefix would process every text twice. */
export const FUSED_STAGES: readonly StageName[] = TOPOLOGIES.staged.filter((s) => !(TOPOLOGIES.fused as readonly StageName[]).includes(s));

export const stageGroup = (t: PipelineTopics, stage: StageName) => `${t.prefix}.${stage}`;

const RETAIN = { 'retention.ms': '-1', 'cleanup.policy': 'delete' };
const COMPACT = { 'cleanup.policy': 'compact' };

/**
 * Every topic with its partitions and retention. Raw and intermediate topics are kept forever (replay re-runs
 * rounds from them); runs and the mixer's changelog are compacted (latest value per key).
 */
export function topicSpecs(t: PipelineTopics, partitions = 4): TopicSpec[] {
  return [
    { topic: t.runs, partitions: 1, config: COMPACT },
    { topic: t.raw, partitions, config: RETAIN },
    { topic: t.requests, partitions, config: RETAIN },
    { topic: t.results, partitions, config: RETAIN },
    { topic: t.pool, partitions, config: RETAIN },
    { topic: t.augmented, partitions, config: RETAIN },
    { topic: t.general, partitions: 1, config: RETAIN },
    // One partition: the mixed stream's order per run is the mix order.
    { topic: t.mixed, partitions: 1, config: RETAIN },
    { topic: t.mixerState, partitions: 1, config: COMPACT },
    { topic: t.metrics, partitions, config: RETAIN },
    { topic: t.evalRecords, partitions, config: RETAIN },
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
