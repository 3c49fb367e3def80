import type { CompletionResult } from '../../processors/pipeline/llm-port.ts';

/**
 * The results of one OpenAI-style completions response for the prompts of a request, in their order (choices by
 * index). With several prompts in one request, usage is shared out: prompt tokens evenly, completion tokens by each
 * text's length. A body that is not JSON or lacks a prompt's choice is fatal for the request, with a sample of it.
 */
export function completionResults(body: string, group: readonly { attempts: number }[], latencyMs: number): { ok: CompletionResult[] } | { fatal: string } {
  let json: { choices?: { index?: number; text?: string; finish_reason?: string | null }[]; usage?: { prompt_tokens?: number; completion_tokens?: number } };
  try {
    json = JSON.parse(body);
  } catch {
    return { fatal: `response is not JSON: ${body.slice(0, 200)}` };
  }
  const choices = json.choices ?? [];
  const texts = group.map((_, i) => choices.find((c) => (c.index ?? 0) === i)?.text);
  if (texts.some((t) => typeof t !== 'string')) return { fatal: `response lacks choices for ${group.length} prompt(s): ${body.slice(0, 200)}` };
  const totalChars = texts.reduce((s, t) => s + t!.length, 0) || 1;
  const usage = json.usage;
  return {
    ok: group.map((p, i) => {
      const share = group.length === 1 ? 1 : texts[i]!.length / totalChars;
      return {
        text: texts[i]!,
        finishReason: choices.find((c) => (c.index ?? 0) === i)?.finish_reason ?? null,
        promptTokens: usage?.prompt_tokens === undefined ? null : Math.round(usage.prompt_tokens / group.length),
        completionTokens: usage?.completion_tokens === undefined ? null : Math.round(usage.completion_tokens * share),
        latencyMs,
        attempts: p.attempts,
      };
    }),
  };
}
