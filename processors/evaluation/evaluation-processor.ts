import { defineProcessor, stageOf, type Emit } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { formatEvaluationPrompt, formatExample } from '../templating/synthesizer-format.ts';
import { pyStrip } from '../round-feedback/parse-output.ts';
import { exactMatch, f1Score } from './f1.ts';
import { metricsOutput, recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import { METRIC_DEFAULTS, type EvaluationRecord, type MetricEventRecord } from '../pipeline/records.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';

export interface EvaluationSettings {
  model: string;
  maxNewTokens: number;
  temperature: number;
}

/** The response is the continuation up to the first `</END>` (docs/method.md §7), stripped as Python's str.strip(). */
export function responseOf(continuation: string): string {
  const end = continuation.indexOf('</END>');
  return pyStrip(end < 0 ? continuation : continuation.slice(0, end));
}

/** The prompts for one evaluation record: zero-shot always, few-shot when it has examples (docs/method.md §7). */
export function evaluationPrompts(r: EvaluationRecord): { shots: number; prompt: string }[] {
  const out = [{ shots: 0, prompt: formatEvaluationPrompt(r.context, r.instruction) }];
  if (r.examples.length > 0) {
    const fewShot = r.examples.map((e) => formatExample(e.context, e.pairs)).join('');
    out.push({ shots: r.examples.length, prompt: formatEvaluationPrompt(r.context, r.instruction, fewShot) });
  }
  return out;
}

/**
 * Evaluation records (gold instruction and responses about a context) → F1 metric events per record and shot count,
 * with the dataset and whether it was seen in the synthesizer's tuning. Metric ids make a replay replace, not add.
 */
export function evaluationProcessor(ctx: PipelineContext, settings: EvaluationSettings) {
  const t = ctx.topics;
  return stageOf(
    defineProcessor<EvaluationRecord, 'metrics'>({
    name: stageGroup(t, 'evaluation'),
    input: { topics: [t.evalRecords], schema: 'evaluation-record' },
    outputs: { metrics: metricsOutput(t) },
    handle: async ({ value: r }) => {
      if (r.responses.length === 0) throw new Error(`evaluation record ${r.id} (${r.dataset}) has no gold response`);
      const pool = ctx.pool(settings.model);
      const scored = await Promise.all(
        evaluationPrompts(r).map(async ({ shots, prompt }) => {
          try {
            const res = await pool.complete({ prompt, maxTokens: settings.maxNewTokens, temperature: settings.temperature, stop: ['</END>'], affinityKey: r.dataset });
            return { shots, res, response: responseOf(res.text) };
          } catch (err) {
            throw new Error(`evaluation of ${r.id} (${shots}-shot) failed: ${errorText(err)}`);
          }
        }),
      );
      return scored.map(({ shots, res, response }): Emit<'metrics'> => {
        const m: MetricEventRecord = {
          ...METRIC_DEFAULTS,
          id: `evaluation/${r.runId}/${r.id}/${shots}`,
          kind: 'evaluation',
          runId: r.runId,
          recordId: r.id,
          time: Date.now(),
          outcome: 'ok',
          fewShot: shots > 0,
          dataset: r.dataset,
          shots,
          seen: r.seen,
          f1: f1Score(response, r.responses),
          exactMatch: exactMatch(response, r.responses),
          response,
          textChars: r.context.length,
          outputChars: res.text.length,
          latencyMs: res.latencyMs,
          promptTokens: res.promptTokens ?? 0,
          completionTokens: res.completionTokens ?? 0,
        };
        return { to: 'metrics', key: recordKey(r.runId, `${r.id}/${shots}`), value: m };
      });
    },
  }),
  );
}
