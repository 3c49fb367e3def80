import type { LlmClient, LlmPorts } from '../../processors/pipeline/llm-port.ts';
import { SynthesisPool } from './synthesis-pool.ts';
import { localTokenizerEstimator, serverTokenEstimator } from './token-estimators.ts';

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

/** The stages' LLM ports over HTTP endpoints: one synthesis pool per model name, all on the configured endpoints. */
export function llmPorts(llm: LlmSettings): LlmPorts {
  const pools = new Map<string, SynthesisPool>();
  const client = (model: string): LlmClient => {
    if (llm.client) return llm.client;
    let p = pools.get(model);
    if (!p) {
      if (llm.endpoints.length === 0) throw new Error('no LLM endpoint configured (--llm-url or IPT_LLM_URL)');
      p = new SynthesisPool({
        endpoints: llm.endpoints,
        model,
        initialWindow: Math.min(8, llm.concurrency),
        maxWindow: llm.concurrency,
        maxAttempts: llm.retries + 1,
        timeoutMs: llm.timeoutMs,
        ...(llm.deadlineMs !== undefined ? { deadlineMs: llm.deadlineMs } : {}),
        backoffMs: 250,
        extraBody: llm.extraBody,
      });
      pools.set(model, p);
    }
    return p;
  };
  const local = llm.tokenizer ? localTokenizerEstimator(llm.tokenizer) : undefined;
  return {
    client,
    tokenEstimator: async (model) => local ?? serverTokenEstimator(client(model)),
    localTokens: local && ((text) => local(text) as Promise<number>),
    backends: () => [...pools.values()].flatMap((p) => p.stats()),
  };
}
