import type { Kafka } from 'kafkajs';
import { SynthesisPool, type PoolOptions } from '../../connectors/llm/synthesis-pool.ts';
import { localTokenizerEstimator, serverTokenEstimator } from '../../connectors/llm/token-estimators.ts';
import { wordsEstimate, type LengthEstimator } from '../templating/length-estimators.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AvroSerde } from '../runtime/serde.ts';
import { TopicTable } from '../runtime/topic-table.ts';
import type { PipelineTopics } from './pipeline-topics.ts';
import type { RunConfig } from './run-config.ts';

/** LLM settings shared by the synthesis and evaluation stages. */
export interface LlmSettings {
  endpoints: string[];
  concurrency: number;
  retries: number;
  timeoutMs: number;
  /** How long one text may wait for an answer, retries and endpoint outages included (the pool's deadline). */
  deadlineMs?: number;
  /** A local tokenizer.json for the `tokens` estimate and mixing weights; else the server's tokenize endpoint. */
  tokenizer?: string;
  extraBody?: Record<string, unknown>;
  /** A client to use instead of HTTP endpoints (the pipeline benchmark's instant recorded backend). */
  client?: LlmClient;
}

/** What the stages need of an LLM client: the synthesis pool, or anything that answers the same way. */
export type LlmClient = Pick<SynthesisPool, 'complete' | 'countTokens'>;

/** What the pipeline's stages share in one process: clients, the run table, LLM pools and length estimators. */
export class PipelineContext {
  readonly runs: TopicTable<RunConfig>;
  private readonly pools = new Map<string, SynthesisPool>();
  private readonly estimators = new Map<string, Promise<LengthEstimator>>();
  private readonly knownEstimators = new Map<string, LengthEstimator>();

  constructor(
    readonly kafka: Kafka,
    readonly serde: AvroSerde,
    readonly topics: PipelineTopics,
    readonly llm: LlmSettings,
    readonly logger: Logger,
    /** How long a stage waits for a record it depends on (a run's config, a text of the next round). */
    readonly waitMs = 120_000,
  ) {
    this.runs = new TopicTable<RunConfig>(kafka, serde, topics.runs, 'run-config', (r) => r.runId);
  }

  async start(): Promise<void> {
    await this.runs.start();
    await this.runs.ready();
  }

  async stop(): Promise<void> {
    await this.runs.stop();
  }

  run(runId: string): RunConfig | Promise<RunConfig> {
    return this.runs.peek(runId) ?? this.runs.get(runId, this.waitMs).catch(() => {
      throw new Error(`unknown run "${runId}": no configuration in ${this.topics.runs} after ${this.waitMs} ms`);
    });
  }

  /** One pool per model name, all on the configured endpoints. */
  pool(model: string, extra: Partial<PoolOptions> = {}): LlmClient {
    if (this.llm.client) return this.llm.client;
    let p = this.pools.get(model);
    if (!p) {
      if (this.llm.endpoints.length === 0) throw new Error('no LLM endpoint configured (--llm-url or IPT_LLM_URL)');
      p = new SynthesisPool({
        endpoints: this.llm.endpoints,
        model,
        initialWindow: Math.min(8, this.llm.concurrency),
        maxWindow: this.llm.concurrency,
        maxAttempts: this.llm.retries + 1,
        timeoutMs: this.llm.timeoutMs,
        ...(this.llm.deadlineMs !== undefined ? { deadlineMs: this.llm.deadlineMs } : {}),
        backoffMs: 250,
        extraBody: this.llm.extraBody,
        ...extra,
      });
      this.pools.set(model, p);
    }
    return p;
  }

  /** The run's length estimator: the value itself once it is known (no promise to await on the hot path). */
  estimator(run: RunConfig): LengthEstimator | Promise<LengthEstimator> {
    const key = run.lengthEstimate === 'words' ? 'words' : `tokens:${run.model}`;
    const known = this.knownEstimators.get(key);
    if (known) return known;
    let e = this.estimators.get(key);
    if (!e) {
      e =
        run.lengthEstimate === 'words'
          ? Promise.resolve(wordsEstimate)
          : this.llm.tokenizer
            ? Promise.resolve(localTokenizerEstimator(this.llm.tokenizer))
            : serverTokenEstimator(this.pool(run.model));
      e.then(
        (v) => this.knownEstimators.set(key, v),
        () => this.estimators.delete(key),
      );
      this.estimators.set(key, e);
    }
    return e;
  }

  /** Tokens of a text for mixing weights: the local tokenizer when configured, else the `words` estimate. */
  mixTokens(): (text: string) => number | Promise<number> {
    if (!this.llm.tokenizer) return (t) => Math.ceil(wordsEstimate(t));
    const est = localTokenizerEstimator(this.llm.tokenizer);
    return (t) => est(t) as Promise<number>;
  }
}
