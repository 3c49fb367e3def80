import { defineProcessor } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { requestPrompt } from '../templating/request-prompt.ts';
import { fitsWithin } from '../templating/length-estimators.ts';
import { recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { SynthesisRequestRecord, SynthesisResultRecord } from '../pipeline/records.ts';

/**
 * Synthesis requests → results, through the synthesis pool (many requests in flight across endpoints, adaptive
 * windows, retries, prefix affinity by collection). An empty text, or one too long for the model even alone, is
 * not sent: its result is `skipped` and it stays in its collection as a raw entry. A request that fails after its
 * retries is dead-lettered with the reason, and a `failed` result still goes out so its collection goes on.
 */
export function synthesisProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  return defineProcessor<SynthesisRequestRecord, 'results'>({
    name: stageGroup(t, 'synthesis'),
    input: { topics: [t.requests], schema: 'synthesis-request' },
    outputs: { results: { topic: t.results, schema: 'synthesis-result' } },
    handle: async ({ value: q }) => {
      const run = await ctx.run(q.runId);
      const key = recordKey(q.runId, q.id);
      const prompt = requestPrompt(q);
      // Written out rather than spread: this runs once per text on the hot path.
      const done = (r: Pick<SynthesisResultRecord, 'outcome' | 'reason'> & Partial<Pick<SynthesisResultRecord, 'output' | 'promptTokens' | 'completionTokens' | 'latencyMs' | 'attempts'>>) => {
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
          finishedAt: Date.now(),
        };
        return [{ to: 'results' as const, key, value }];
      };
      if (q.text === '') return done({ outcome: 'skipped', reason: 'empty text' });
      const limit = run.maxModelLen - run.maxNewTokens;
      if (!q.fewShot) {
        const estimate = await ctx.estimator(run);
        if (!(await fitsWithin(estimate, prompt, limit))) {
          const length = await estimate(prompt);
          return done({ outcome: 'skipped', reason: `too long: ${length} > ${limit} (max-model-len − max-new-tokens) even without examples; kept as raw text` });
        }
      }
      try {
        const res = await ctx.pool(run.model).complete({ prompt, maxTokens: run.maxNewTokens, temperature: run.temperature, affinityKey: q.collectionId });
        return done({ outcome: 'ok', reason: '', output: res.text, promptTokens: res.promptTokens ?? 0, completionTokens: res.completionTokens ?? 0, latencyMs: res.latencyMs, attempts: res.attempts });
      } catch (err) {
        const reason = `synthesis failed: ${errorText(err)}`;
        return { emits: done({ outcome: 'failed', reason }), deadLetter: reason };
      }
    },
  });
}
