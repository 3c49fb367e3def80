import { defineProcessor, stageOf, type Emit } from '../runtime/processor.ts';
import type { ReadBackTable } from '../runtime/read-back-table.ts';
import { limiter } from '../runtime/concurrency.ts';
import { isSampledById } from '../round-feedback/pair-sample.ts';
import { metricsOutput, recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import { METRIC_DEFAULTS, type MetricEventBatchRecord, type MetricEventRecord, type RawTextRecord } from '../pipeline/records.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { LlmClient } from '../pipeline/llm-port.ts';
import { judgePrompt, judgementId, parseJudgement, type Judgement } from './judge.ts';

export interface JudgeStageSettings {
  /** The judge model's name, stored with each verdict. */
  model: string;
  /** Pairs judged per run and round at most. */
  perRound: number;
  /** Raw texts the read-back holds ahead. */
  maxHeld?: number;
  /** Judge requests in flight at most (the rest wait here, not in the pool, whose deadline starts on entry). */
  inFlight?: number;
}

type Sampled = MetricEventRecord & { sample: NonNullable<MetricEventRecord['sample']> };

/** A synthesis event the judge draws from: a text sampled by its id (a uniform subset of its round), with pairs. */
const judgeable = (e: MetricEventRecord): e is Sampled => e.kind === 'synthesis' && e.outcome === 'ok' && e.sample !== null && e.sample.pairs.length > 0 && isSampledById(e.recordId);

/** The pairs of a metric event the judge stage draws from (0 for an event it does not judge): what a run waits for. */
export const judgeablePairs = (e: MetricEventRecord): number => (judgeable(e) ? e.sample.pairs.length : 0);

/**
 * The LLM judge as a stage (docs/method.md §7.4): it follows the metric events, takes the synthesis events of the
 * texts sampled by id, and judges their pairs, each against its whole text (read back from the raw topic), up to
 * `perRound` pairs per run and round; each verdict goes back to the metric events (kind `judgement`), and the
 * ClickHouse sink stores it in `judgements` under the same id as `ipt judge` would, so either replaces the other.
 * The cap is kept in memory (one active instance), for the life of the process: a pair judged again after a restart
 * or a replay replaces its row and is not counted twice; pairs first seen after a restart count against a fresh cap;
 * a pair whose judge failed gives its place to a later one. An open run (HTTP ingest: one round without end) has at
 * most `perRound` pairs judged per process. At most `inFlight` requests are sent at once.
 */
export function judgeProcessor(ctx: PipelineContext, judge: LlmClient, settings: JudgeStageSettings) {
  const t = ctx.topics;
  // Per run and round, the pairs judged so far (by text and pair): at most perRound keys each.
  const judged = new Map<string, Set<string>>();
  const roundOf = (e: Sampled) => `${e.runId}\u0000${e.round}`;
  const slot = limiter(settings.inFlight ?? 8);
  let raw: ReadBackTable<RawTextRecord> | undefined;
  const rawTable = () =>
    (raw ??= ctx.tables.readBack<RawTextRecord>(t.raw, 'raw-text', (r) => (r.convert && isSampledById(r.id) ? recordKey(r.runId, r.id) : undefined), { maxHeld: settings.maxHeld ?? 2_000 }));

  /** Claims a place under the cap for a pair; a pair already judged keeps its place. */
  const claim = (e: Sampled, pairIndex: number): boolean => {
    const k = roundOf(e);
    let set = judged.get(k);
    if (!set) judged.set(k, (set = new Set()));
    const pair = `${e.recordId}/${pairIndex}`;
    if (set.has(pair)) return true;
    if (set.size >= settings.perRound) return false;
    set.add(pair);
    return true;
  };

  /** The whole text; its start, as the sample kept it, when the raw topic no longer has it. */
  const textOf = async (e: Sampled): Promise<{ context: string; partial: boolean }> => {
    try {
      const r = await rawTable().get(recordKey(e.runId, e.recordId), ctx.waitMs);
      return { context: r.text, partial: false };
    } catch {
      ctx.logger.warn({ run: e.runId, id: e.recordId }, 'judge: the text is not in the raw topic; judging on the start the sample kept');
      return { context: e.sample.context, partial: e.sample.contextChars > e.sample.context.length };
    }
  };

  const verdict = (e: Sampled, pairIndex: number, v: Judgement | { error: string }): Emit<'metrics'> => {
    const p = e.sample.pairs[pairIndex]!;
    const ok = !('error' in v);
    const m: MetricEventRecord = {
      ...METRIC_DEFAULTS,
      id: judgementId(e.runId, e.round, e.recordId, pairIndex, settings.model),
      kind: 'judgement',
      runId: e.runId,
      round: e.round,
      recordId: e.recordId,
      time: Date.now(),
      outcome: ok ? 'ok' : 'failed',
      judgement: {
        pairIndex,
        judgeModel: settings.model,
        judged: ok,
        relevant: ok && v.relevant,
        accurate: ok && v.accurate,
        category: ok ? v.category : '',
        error: ok ? '' : v.error,
        question: p.question,
        answer: p.answer,
      },
    };
    return { to: 'metrics', key: recordKey(e.runId, `${e.recordId}/${pairIndex}/judge`), value: m };
  };

  const judgeText = async (e: Sampled, pairs: number[]): Promise<Emit<'metrics'>[]> => {
    const text = await textOf(e);
    return Promise.all(
      pairs.map(async (i) => {
        const p = e.sample.pairs[i]!;
        try {
          const res = await slot(() => judge.complete({ prompt: judgePrompt({ context: text.context, question: p.question, answer: p.answer, partial: text.partial }), maxTokens: 96, temperature: 0 }));
          return verdict(e, i, parseJudgement(res.text));
        } catch (err) {
          // Past the pool's retries and deadline: the verdict says the judge failed, nothing waits on it, and the pair
          // gives its place under the cap to a later one.
          judged.get(roundOf(e))?.delete(`${e.recordId}/${i}`);
          return verdict(e, i, { error: `the judge failed: ${err instanceof Error ? err.message : String(err)}` });
        }
      }),
    );
  };

  return stageOf(
    defineProcessor<MetricEventBatchRecord, 'metrics'>({
      name: stageGroup(t, 'judge'),
      input: { topics: [t.metrics], schema: 'metric-event-batch' },
      outputs: { metrics: metricsOutput(t) },
      handle: async ({ value }) => {
        const work: Promise<Emit<'metrics'>[]>[] = [];
        for (const e of value.events) {
          if (!judgeable(e)) continue;
          const pairs = e.sample.pairs.map((_, i) => i).filter((i) => claim(e, i));
          if (pairs.length > 0) work.push(judgeText(e, pairs));
        }
        if (work.length === 0) return { skip: 'no pair to judge: no text sampled by id, or the round has its judged pairs' };
        return (await Promise.all(work)).flat();
      },
    }),
    { close: async () => raw?.stop() },
  );
}
