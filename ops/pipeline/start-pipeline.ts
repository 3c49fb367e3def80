import type { ClickHouseClient } from '@clickhouse/client';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import type { ProcessorSpec, Stage } from '../../processors/runtime/processor.ts';
import { startProcessor, type RunningProcessor } from '../../processors/runtime/run-processor.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { kafkaTables } from '../../processors/runtime/tables.ts';
import { describeMismatch, ensureTopics } from '../../processors/runtime/topics.ts';
import { templatingProcessor } from '../../processors/templating/templating-processor.ts';
import { templatingPoolProcessor } from '../../processors/templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../../processors/synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../../processors/round-feedback/round-feedback-processor.ts';
import { mixingProcessor } from '../../processors/mixing/mixing-processor.ts';
import { evaluationProcessor, type EvaluationSettings } from '../../processors/evaluation/evaluation-processor.ts';
import { judgeProcessor } from '../../processors/evaluation/judge-processor.ts';
import { judgeGuide, type JudgeGuide } from '../../processors/evaluation/judge.ts';
import { metricsSinkProcessor } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { llmPorts, type LlmSettings } from '../../connectors/llm/llm-ports.ts';
import type { BackendStats } from '../../processors/pipeline/llm-port.ts';
import { FUSED_STAGES, pipelineTopics, stageGroup, TOPOLOGIES, topicSpecs, type PipelineTopics, type StageName, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { fusedProcessor } from '../../processors/pipeline/fused-processor.ts';
import { STAGE_GRAPH, stageNode } from '../../processors/pipeline/topology.ts';

export interface PipelineOptions {
  runtime: RuntimeConfig;
  prefix: string;
  partitions: number;
  llm: LlmSettings;
  evaluation: EvaluationSettings;
  /** The judge stage's judge (docs/method.md §7.4); without it the judge stage does not run. */
  judge?: JudgeStageOptions;
  clickhouse: { url: string; database: string };
  /** Stages to run in this process (all of the topology's by default): several processes can share the work, one stage each. */
  stages?: readonly StageName[];
  /** staged (default) or fused: see TOPOLOGIES (the judge joins either where configured). */
  topology?: Topology;
  logger: Logger;
  metrics?: ProcessorMetrics;
  waitMs?: number;
}

export interface JudgeStageOptions {
  endpoints: string[];
  model: string;
  guided: JudgeGuide;
  /** Pairs judged per run and round at most. */
  perRound: number;
}

export interface RunningPipeline {
  topics: PipelineTopics;
  processors: RunningProcessor[];
  metrics: ProcessorMetrics;
  ready(): boolean;
  stop(): Promise<void>;
  /**
   * Settles when the pipeline stopped: after stop(), or with an Error when a table its stages read gave up following
   * its topic. The stages are stopped then, so a supervisor restarts the process rather than it living on idle.
   */
  done: Promise<void | Error>;
  /** Why the pipeline stopped by itself. */
  readonly failure?: Error;
  /** The LLM endpoints as this process's stages see them (window, queue, failures by kind, tokens/s). */
  backends(): BackendStats[];
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
 * templating, templating-pool, synthesis, round-feedback, mixing, evaluation, the judge (when configured) and the ClickHouse sink.
 */
export async function startPipeline(opts: PipelineOptions): Promise<RunningPipeline> {
  // The cut's stages, and the judge where one is configured; asked for by name without one, it is a mistake. Checked
  // before anything is created.
  const stages = new Set<StageName>(opts.stages ?? [...TOPOLOGIES[opts.topology ?? 'staged'], ...(opts.judge ? (['judge'] as const) : [])]);
  if (stages.has('judge') && !opts.judge) throw new Error(`the judge stage needs ${stageNode('judge').configured}`);
  const both = FUSED_STAGES.filter((s) => stages.has(s));
  if (stages.has('fused') && both.length > 0) throw new Error(`the fused stage replaces ${both.join(', ')}: run one or the other, not both`);
  const topics = await ensurePipelineTopics(opts);
  const metrics = opts.metrics ?? new ProcessorMetrics();
  const kafka = createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: opts.runtime.clientId, logger: opts.logger });
  const serde = new AvroSerde(opts.runtime.registryUrl);
  let ch: ClickHouseClient | undefined;
  const stagesStarted: Stage<never, string>[] = [];
  const processors: RunningProcessor[] = [];
  let failure: Error | undefined;
  let settle!: (v: void | Error) => void;
  const done = new Promise<void | Error>((resolve) => (settle = resolve));
  let stopping: Promise<void> | undefined;
  const tableFailed = (topic: string, err: Error) => {
    if (failure || stopping) return;
    failure = new Error(`the table over ${topic} stopped following it: ${err.message}`);
    opts.logger.error({ topic, err: err.message }, 'a table stopped following its topic: stopping the pipeline');
    // Settled first, so whoever watches the pipeline learns why before its stages stop (and do not read as stopping by
    // themselves); then they are stopped here, whether or not anyone watches.
    settle(failure);
    stop().catch((e: Error) => opts.logger.error({ err: e.message }, 'stopping the pipeline failed'));
  };
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.allSettled(processors.map((p) => p.stop()));
      await Promise.allSettled([...stagesStarted.map((st) => st.close()), ctx.stop()]);
      await ch?.close();
    })());
  const llm = llmPorts(opts.llm);
  // The judge is another model, usually on other servers, guided to its JSON answer.
  const judgeLlm = opts.judge && llmPorts({ ...opts.llm, endpoints: opts.judge.endpoints, tokenizer: undefined, extraBody: judgeGuide(opts.judge.guided), client: undefined });
  const ctx = new PipelineContext(kafkaTables(kafka, serde, tableFailed), topics, llm, opts.logger, opts.waitMs);
  await ctx.start();

  const specs: [ProcessorSpec<never, string>, Partial<RuntimeConfig>][] = [];
  // The stages that call the LLM keep as many records in flight as the pool may send at once.
  const llmInFlight = { concurrency: Math.max(opts.runtime.concurrency, opts.llm.concurrency * Math.max(1, opts.llm.endpoints.length)) };
  /**
   * A stage, with what its node in the topology says (one active instance: ProcessorSpec.exclusive; LLM calls in
   * flight): what it owns (tables it reads, a hand-over) is opened before any processor starts, and closed after.
   */
  const add = async <In, O extends string>(name: StageName, stage: Stage<In, O>, overrides: Partial<RuntimeConfig> = {}) => {
    await stage.init();
    stagesStarted.push(stage as unknown as Stage<never, string>);
    const node = stageNode(name);
    const s = node.exclusive ? { ...stage.spec, exclusive: true } : stage.spec;
    specs.push([s as unknown as ProcessorSpec<never, string>, { ...(node.callsLlm ? llmInFlight : {}), ...overrides }]);
  };
  const build: Record<StageName, () => Promise<void>> = {
    templating: () => add('templating', templatingProcessor(ctx)),
    'templating-pool': () => add('templating-pool', templatingPoolProcessor(ctx)),
    synthesis: () => add('synthesis', synthesisProcessor(ctx)),
    'round-feedback': () => add('round-feedback', roundFeedbackProcessor(ctx)),
    fused: () => add('fused', fusedProcessor(ctx)),
    mixing: () => add('mixing', mixingProcessor(ctx)),
    evaluation: () => add('evaluation', evaluationProcessor(ctx, opts.evaluation)),
    judge: () => add('judge', judgeProcessor(ctx, judgeLlm!.client(opts.judge!.model), { model: opts.judge!.model, perRound: opts.judge!.perRound, inFlight: opts.llm.concurrency * opts.judge!.endpoints.length })),
    'clickhouse-sink': async () => {
      await migrate(opts.clickhouse.url, opts.clickhouse.database);
      ch = clickhouseClient(opts.clickhouse.url, opts.clickhouse.database);
      // Rows wait in the inserter's batch, so the whole chunk is in flight at once.
      await add('clickhouse-sink', metricsSinkProcessor(topics, ch, { logger: opts.logger.child({ processor: stageGroup(topics, 'clickhouse-sink') }) }), { concurrency: opts.runtime.batchSize });
    },
  };
  try {
    // In the graph's order, upstream first.
    for (const node of STAGE_GRAPH) if (stages.has(node.name)) await build[node.name]();
    // Downstream first: when a stage starts consuming, the stages it feeds are already in their groups.
    for (const [spec, overrides] of [...specs].reverse()) {
      processors.push(await startProcessor(spec, { ...opts.runtime, ...overrides }, { metrics, logger: opts.logger, kafka }));
      // A table gave up while the stages were starting: those started since its stop() are not in it.
      if (failure) throw failure;
    }
  } catch (err) {
    await Promise.allSettled(processors.map((p) => p.stop()));
    await stop().catch(() => undefined);
    throw err;
  }
  return {
    topics,
    processors,
    metrics,
    ready: () => processors.every((p) => p.ready()),
    done,
    backends: () => [...(llm.backends?.() ?? []), ...(judgeLlm?.backends?.() ?? [])],
    get failure() {
      return failure;
    },
    async stop() {
      try {
        await stop();
      } finally {
        settle(failure);
      }
    },
  };
}
