import { cannedPairs, RecordedCompletionsServer } from '../recorded-llm/recorded-completions-server.ts';
import type { CompletionResult, LlmClient } from '../../processors/pipeline/llm-port.ts';

/**
 * The pipeline benchmark's LLM: recorded-style answers (two made-up pairs from the prompt's last context), returned
 * at once in-process, so the benchmark measures the stages and Kafka rather than inference or HTTP.
 */
export function instantRecordedBackend(): LlmClient & { calls: number } {
  const backend = {
    calls: 0,
    async complete(req: { prompt: string }): Promise<CompletionResult> {
      backend.calls++;
      return { text: cannedPairs(RecordedCompletionsServer.lastContext(req.prompt) ?? ''), finishReason: 'stop', promptTokens: null, completionTokens: null, latencyMs: 0, attempts: 1 };
    },
    async countTokens(): Promise<number | undefined> {
      return undefined;
    },
  };
  return backend;
}
