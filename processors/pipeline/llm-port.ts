import type { LengthEstimator } from '../templating/length-estimators.ts';

/**
 * What the stages ask of an LLM, and what they get from the adapter that answers (the synthesis pool over
 * OpenAI-compatible servers, or a benchmark's instant backend). The stages see only these ports; the adapters are
 * chosen and built by the application (ops/pipeline/start-pipeline.ts).
 */
export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  stop?: string[];
}

export interface LlmRequest extends CompletionRequest {
  /** Requests sharing a prompt prefix (a few-shot history) share a key, so one server can reuse its prefix cache. */
  affinityKey?: string;
}

export interface CompletionResult {
  text: string;
  finishReason: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number;
  attempts: number;
}

export interface LlmClient {
  complete(req: LlmRequest): Promise<CompletionResult>;
  /** The server's token count for a text; undefined when it has no tokenize endpoint. */
  countTokens(text: string): Promise<number | undefined>;
}

/** The LLM side of a pipeline process: one client per model, and token counting for the `tokens` estimate and mixing. */
export interface LlmPorts {
  client(model: string): LlmClient;
  /** The `tokens` length estimate for a model's prompts: a local tokenizer, else the server's tokenize endpoint. */
  tokenEstimator(model: string): Promise<LengthEstimator>;
  /** Exact token counts for mixing weights, where a local tokenizer is configured (else mixing counts words). */
  localTokens?: (text: string) => Promise<number>;
  /** The inference endpoints' state (window, queue, failures, tokens), where the client keeps one. */
  backends?: () => BackendStats[];
}

/** One inference endpoint's state, for the dashboard and benchmarks. */
export interface BackendStats {
  model: string;
  url: string;
  window: number;
  inFlight: number;
  queued: number;
  completed: number;
  errors: number;
  failures: Record<string, number>;
  lastError: string;
  tokens: number;
  /** Generated tokens per second since its first completion. */
  tokensPerSecond: number;
  /** Refused connections: no requests are sent to it until its back-off ends. */
  down: boolean;
}
