import type { ClickHouseClient } from '@clickhouse/client';
import { createKafka } from '../runtime/kafka-client.ts';
import type { Logger } from '../runtime/logger.ts';
import { ProcessorMetrics } from '../runtime/metrics.ts';
import type { ProcessorSpec } from '../runtime/processor.ts';
import { startProcessor, type RunningProcessor } from '../runtime/run-processor.ts';
import type { RuntimeConfig } from '../runtime/runtime-config.ts';
import { AvroSerde } from '../runtime/serde.ts';
import { describeMismatch, ensureTopics } from '../runtime/topics.ts';
import { templatingProcessor } from '../templating/templating-processor.ts';
import { templatingPoolProcessor } from '../templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../round-feedback/round-feedback-processor.ts';
import { mixingProcessor } from '../mixing/mixing-processor.ts';
import { evaluationProcessor, type EvaluationSettings } from '../evaluation/evaluation-processor.ts';
import { metricsSinkProcessor } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { PipelineContext, type LlmSettings } from './pipeline-context.ts';
import { FUSED_STAGES, pipelineTopics, stageGroup, TOPOLOGIES, topicSpecs, type PipelineTopics, type StageName, type Topology } from './pipeline-topics.ts';
import { fusedProcessor } from './fused-processor.ts';

export interface PipelineOptions {
  runtime: RuntimeConfig;
  prefix: string;
  partitions: number;
  llm: LlmSettings;
  evaluation: EvaluationSettings;
  clickhouse: { url: string; database: string };
  /** Stages to run in this process (all of the topology's by default): several processes can share the work, one stage each. */
  stages?: readonly StageName[];
  /** staged (default) or fused: see TOPOLOGIES. */
  topology?: Topology;
  logger: Logger;
  metrics?: ProcessorMetrics;
  waitMs?: number;
}

export interface RunningPipeline {
  topics: PipelineTopics;
  processors: RunningProcessor[];
  metrics: ProcessorMetrics;
  ready(): boolean;
  stop(): Promise<void>;
}

/** Creates the pipeline's topics (retained or compacted), so a run can be ingested before any stage starts. */
export async function ensurePipelineTopics(opts: Pick<PipelineOptions, 'runtime' | 'prefix' | 'partitions' | 'logger'>): Promise<PipelineTopics> {
  const topics = pipelineTopics(opts.prefix);
  const kafka = createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-admin`, logger: opts.logger });
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const m of await ensureTopics(admin, topicSpecs(topics, opts.partitions))) opts.logger.warn({ topic: m.topic }, describeMismatch(m));
  } finally {
    await admin.disconnect();
  }
  return topics;
}

/**
 * Starts the chosen stages in this process, each a processor on the runtime in its own consumer group:
 * templating, templating-pool, synthesis, round-feedback, mixing, evaluation and the ClickHouse sink.
 */
export async function startPipeline(opts: PipelineOptions): Promise<RunningPipeline> {
  const topics = await ensurePipelineTopics(opts);
  const stages = new Set<StageName>(opts.stages ?? TOPOLOGIES[opts.topology ?? 'staged']);
  const both = FUSED_STAGES.filter((s) => stages.has(s));
  if (stages.has('fused') && both.length > 0) throw new Error(`the fused stage replaces ${both.join(', ')}: run one or the other, not both`);
  const metrics = opts.metrics ?? new ProcessorMetrics();
  const kafka = createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: opts.runtime.clientId, logger: opts.logger });
  const serde = new AvroSerde(opts.runtime.registryUrl);
  const ctx = new PipelineContext(kafka, serde, topics, opts.llm, opts.logger, opts.waitMs);
  await ctx.start();

  let ch: ClickHouseClient | undefined;
  const extras: { stop(): Promise<void> }[] = [];
  const specs: [ProcessorSpec<never, string>, Partial<RuntimeConfig>][] = [];
  const add = <In, O extends string>(spec: ProcessorSpec<In, O>, overrides: Partial<RuntimeConfig> = {}) => specs.push([spec as unknown as ProcessorSpec<never, string>, overrides]);
  // A stage that reads other topics as tables: they are loaded before it starts, and stopped with it.
  const addWithTables = async <In, O extends string>(stage: { spec: ProcessorSpec<In, O>; start(): Promise<void>; stop(): Promise<void> }, exclusive = false) => {
    await stage.start();
    extras.push(stage);
    add(exclusive ? { ...stage.spec, exclusive } : stage.spec);
  };

  if (stages.has('templating')) add(templatingProcessor(ctx));
  if (stages.has('templating-pool')) await addWithTables(templatingPoolProcessor(ctx));
  // The stages that call the LLM keep as many records in flight as the pool may send at once.
  const llmInFlight = { concurrency: Math.max(opts.runtime.concurrency, opts.llm.concurrency * Math.max(1, opts.llm.endpoints.length)) };
  if (stages.has('synthesis')) add(synthesisProcessor(ctx), llmInFlight);
  if (stages.has('round-feedback')) add(roundFeedbackProcessor(ctx));
  // The mixer and the fused stage keep each run's mix counts in memory: one active instance per prefix, any others
  // standbys that take over when it stops or dies (ProcessorSpec.exclusive).
  if (stages.has('fused')) {
    const fused = fusedProcessor(ctx);
    await fused.start();
    extras.push(fused);
    add({ ...fused.spec, exclusive: true }, llmInFlight);
  }
  if (stages.has('mixing')) await addWithTables(mixingProcessor(ctx), true);
  if (stages.has('evaluation')) add(evaluationProcessor(ctx, opts.evaluation));
  if (stages.has('clickhouse-sink')) {
    await migrate(opts.clickhouse.url, opts.clickhouse.database);
    ch = clickhouseClient(opts.clickhouse.url, opts.clickhouse.database);
    // Rows wait in the inserter's batch, so the whole chunk is in flight at once.
    add(metricsSinkProcessor(topics, ch, { logger: opts.logger.child({ processor: stageGroup(topics, 'clickhouse-sink') }) }), { concurrency: opts.runtime.batchSize });
  }

  const processors: RunningProcessor[] = [];
  try {
    // Downstream first: when a stage starts consuming, the stages it feeds are already in their groups.
    for (const [spec, overrides] of [...specs].reverse()) processors.push(await startProcessor(spec, { ...opts.runtime, ...overrides }, { metrics, logger: opts.logger, kafka }));
  } catch (err) {
    await Promise.allSettled(processors.map((p) => p.stop()));
    throw err;
  }
  return {
    topics,
    processors,
    metrics,
    ready: () => processors.every((p) => p.ready()),
    async stop() {
      await Promise.allSettled([...processors.map((p) => p.stop()), ...extras.map((e) => e.stop()), ctx.stop()]);
      await ch?.close();
    },
  };
}
