import { wordsEstimate, type LengthEstimator } from '../templating/length-estimators.ts';
import type { Logger } from '../runtime/logger.ts';
import type { TopicTable } from '../runtime/topic-table.ts';
import type { Tables } from '../runtime/tables.ts';
import type { PipelineTopics } from './pipeline-topics.ts';
import type { RunConfig } from './run-config.ts';
import type { LlmClient, LlmPorts } from './llm-port.ts';

/**
 * What the pipeline's stages share in one process, as ports: the tables they read topics through, the run table, the
 * LLM ports and the length estimators built on them, the logger. The ports come from the application, which picks the
 * adapters (or from the broker-less test driver).
 */
export class PipelineContext {
  readonly runs: TopicTable<RunConfig>;
  private readonly estimators = new Map<string, Promise<LengthEstimator>>();
  private readonly knownEstimators = new Map<string, LengthEstimator>();

  constructor(
    /** Topics read as tables (Kafka, or the test driver's memory). */
    readonly tables: Tables,
    readonly topics: PipelineTopics,
    private readonly llm: LlmPorts,
    readonly logger: Logger,
    /** How long a stage waits for a record it depends on (a run's config, a text of the next round). */
    readonly waitMs = 120_000,
  ) {
    this.runs = tables.follow<RunConfig>(topics.runs, 'run-config', (r) => r.runId);
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

  /** The LLM client for a model (one per model, shared by the stages). */
  pool(model: string): LlmClient {
    return this.llm.client(model);
  }

  /** The run's length estimator: the value itself once it is known (no promise to await on the hot path). */
  estimator(run: RunConfig): LengthEstimator | Promise<LengthEstimator> {
    const key = run.lengthEstimate === 'words' ? 'words' : `tokens:${run.model}`;
    const known = this.knownEstimators.get(key);
    if (known) return known;
    let e = this.estimators.get(key);
    if (!e) {
      e = run.lengthEstimate === 'words' ? Promise.resolve(wordsEstimate) : this.llm.tokenEstimator(run.model);
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
    return this.llm.localTokens ?? ((t) => Math.ceil(wordsEstimate(t)));
  }
}
