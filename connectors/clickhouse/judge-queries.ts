import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from './clickhouse.ts';
import { numeric, runFilter, sqlString } from './query-filters.ts';

/** Every sampled pair of a run (pair_samples) by key only, in a stable order: what the judge samples from. */
export async function pairSampleKeys(ch: ClickHouseClient, runId: string): Promise<{ round: number; record_id: string; pair_index: number }[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(ch, `SELECT round, record_id, pair_index FROM pair_samples FINAL WHERE ${f.where} ORDER BY round, record_id, pair_index`, f.params);
  return rows.map((r) => ({ round: Number(r.round), record_id: String(r.record_id), pair_index: Number(r.pair_index) }));
}

/** The chosen sampled pairs' questions, answers and the start of their texts, by `<record>/<pair index>`. */
export async function pairSamplesById(ch: ClickHouseClient, runId: string, keys: { record_id: string; pair_index: number }[]): Promise<Map<string, { question: string; answer: string; context: string; context_chars: number }>> {
  const out = new Map<string, { question: string; answer: string; context: string; context_chars: number }>();
  const f = await runFilter(ch, runId);
  // A bounded IN list per query (the ids are run-scoped: the sampled texts' ids).
  for (let i = 0; i < keys.length; i += 500) {
    const ids = [...new Set(keys.slice(i, i + 500).map((k) => k.record_id))].map(sqlString).join(', ');
    const rows = await queryRows<Record<string, unknown>>(ch, `SELECT record_id, pair_index, question, answer, context, context_chars FROM pair_samples FINAL WHERE ${f.where} AND record_id IN (${ids})`, f.params);
    for (const r of rows) out.set(`${r.record_id}/${r.pair_index}`, { question: String(r.question), answer: String(r.answer), context: String(r.context), context_chars: Number(r.context_chars) });
  }
  return out;
}

export interface JudgeRoundRow {
  run_id: string;
  round: number;
  judge_model: string;
  pairs: number;
  /** The texts those pairs came from (texts are a round's: a text's id is unique within its run). */
  texts: number;
  judged: number;
  relevant: number;
  accurate: number;
}

/** The judge's verdicts per run, round and judge model (judgements): pairs sent, answers read, relevant, accurate. */
export async function judgeVerdicts(ch: ClickHouseClient, runId?: string): Promise<JudgeRoundRow[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT run_id, round, judge_model, count() AS pairs, uniqExact(record_id) AS texts, sum(judged) AS judged, sum(relevant) AS relevant, sum(accurate) AS accurate FROM judgements FINAL WHERE ${f.where} GROUP BY run_id, round, judge_model ORDER BY run_id, round, judge_model`,
    f.params,
  );
  return rows.map((r) => ({ ...numeric<JudgeRoundRow>(r), run_id: String(r.run_id), judge_model: String(r.judge_model) }));
}

/** The task categories each judge model gave, with their pairs. */
export async function judgeCategories(ch: ClickHouseClient, runId?: string): Promise<{ judge_model: string; category: string; pairs: number }[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(ch, `SELECT judge_model, category, count() AS pairs FROM judgements FINAL WHERE ${f.where} AND judged = 1 GROUP BY judge_model, category ORDER BY judge_model, pairs DESC, category`, f.params);
  return rows.map((r) => ({ judge_model: String(r.judge_model), category: String(r.category), pairs: Number(r.pairs) }));
}

/** Drops a run's earlier verdicts by one judge model, so judging again (another seed, another sample) replaces them. */
export async function clearJudgements(ch: ClickHouseClient, runId: string, judgeModel: string): Promise<void> {
  await ch.command({ query: `ALTER TABLE judgements DELETE WHERE run_id = ${sqlString(runId)} AND judge_model = ${sqlString(judgeModel)}` });
}
