import { defineProcessor, stageOf, type Emit, type HandlerResult } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { requestPrompt } from '../templating/request-prompt.ts';
import { fitsWithin } from '../templating/length-estimators.ts';
import { recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { SynthesisRequestRecord, SynthesisResultRecord } from '../pipeline/records.ts';
import type { RunConfig } from '../pipeline/run-config.ts';

/**
 * Synthesis requests → results, through the synthesis pool (many requests in flight across endpoints, adaptive
 * windows, retries, prefix affinity by collection). An empty text, or one too long for the model even alone, is
 * not sent: its result is `skipped` and it stays in its collection as a raw entry. A request that fails after its
 * retries is dead-lettered with the reason, and a `failed` result still goes out so its collection goes on.
 */
export function synthesisProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  return stageOf(
    defineProcessor<SynthesisRequestRecord, 'results'>({
    name: stageGroup(t, 'synthesis'),
    input: { topics: [t.requests], schema: 'synthesis-request' },
    outputs: { results: { topic: t.results, schema: 'synthesis-result' } },
    // No promise to await where the run is known: only the LLM call is asynchronous.
    handle: ({ value: q }) => {
      return whenReady(ctx.run(q.runId), (run) => synthesize(ctx, q, run));
    },
  }),
  );
}

type Outcome = Pick<SynthesisResultRecord, 'outcome' | 'reason'> & Partial<Pick<SynthesisResultRecord, 'output' | 'promptTokens' | 'completionTokens' | 'latencyMs' | 'attempts' | 'finishReason'>>;

/** The result record of request q (every field written out rather than spread: once per text on the hot path). */
function resultOf(q: SynthesisRequestRecord, prompt: string, r: Outcome): Emit<'results'>[] {
  const value: SynthesisResultRecord = {
    id: q.id,
    runId: q.runId,
    round: q.round,
    position: q.position,
    text: q.text,
    fewShot: q.fewShot,
    collection: q.collection,
    collectionId: q.collectionId,
    outcome: r.outcome,
    reason: r.reason,
    output: r.output ?? '',
    promptChars: prompt.length,
    promptTokens: r.promptTokens ?? 0,
    completionTokens: r.completionTokens ?? 0,
    latencyMs: r.latencyMs ?? 0,
    attempts: r.attempts ?? 0,
    finishReason: r.finishReason ?? '',
    finishedAt: Date.now(),
  };
  return [{ to: 'results', key: recordKey(q.runId, q.id), value }];
}

function synthesize(ctx: PipelineContext, q: SynthesisRequestRecord, run: RunConfig): HandlerResult<'results'> | Promise<HandlerResult<'results'>> {
  const prompt = requestPrompt(q);
  if (q.text === '') return resultOf(q, prompt, { outcome: 'skipped', reason: 'empty text' });
  if (q.fewShot) return complete(ctx, q, run, prompt);
  // A zero-shot prompt may be too long even alone; the estimate's upper bound usually settles it without measuring.
  const estimate = ctx.estimator(run);
  const fits = estimate instanceof Promise ? undefined : fitsWithin(estimate, prompt, run.maxModelLen - run.maxNewTokens);
  return fits === true ? complete(ctx, q, run, prompt) : checkLengthThenComplete(ctx, q, run, prompt).catch((err) => failed(q, prompt, `length estimate failed: ${errorText(err)}`));
}

/**
 * A text that could not be synthesized: dead-lettered with the reason, and a `failed` result still goes out so its
 * collection goes on and the next round's text at its position is not left waiting.
 */
function failed(q: SynthesisRequestRecord, prompt: string, reason: string): HandlerResult<'results'> {
  return { emits: resultOf(q, prompt, { outcome: 'failed', reason }), deadLetter: reason };
}

async function checkLengthThenComplete(ctx: PipelineContext, q: SynthesisRequestRecord, run: RunConfig, prompt: string): Promise<HandlerResult<'results'>> {
  const limit = run.maxModelLen - run.maxNewTokens;
  const estimate = await ctx.estimator(run);
  if (!(await fitsWithin(estimate, prompt, limit))) {
    const length = await estimate(prompt);
    return resultOf(q, prompt, { outcome: 'skipped', reason: `too long: ${length} > ${limit} (max-model-len − max-new-tokens) even without examples; kept as raw text` });
  }
  return complete(ctx, q, run, prompt);
}

async function complete(ctx: PipelineContext, q: SynthesisRequestRecord, run: RunConfig, prompt: string): Promise<HandlerResult<'results'>> {
  try {
    const res = await ctx.pool(run.model).complete({ prompt, maxTokens: run.maxNewTokens, temperature: run.temperature, affinityKey: q.collectionId });
    return resultOf(q, prompt, { outcome: 'ok', reason: '', output: res.text, promptTokens: res.promptTokens ?? 0, completionTokens: res.completionTokens ?? 0, latencyMs: res.latencyMs, attempts: res.attempts, finishReason: res.finishReason ?? '' });
  } catch (err) {
    return failed(q, prompt, `synthesis failed: ${errorText(err)}`);
  }
}
