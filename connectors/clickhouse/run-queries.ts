import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from './clickhouse.ts';
import { numeric, runFilter, sqlString } from './query-filters.ts';

export interface RoundAggregate {
  run_id: string;
  round: number;
  texts: number;
  failed: number;
  skipped: number;
  few_shot_texts: number;
  pairs_total: number;
  pairs_per_text: number;
  parse_success: number;
  free_form: number;
  mc: number;
  cot: number;
  mc_cot: number;
  duplicate_rate: number;
  grounding_avg: number;
  latency_ms_avg: number;
  prompt_tokens_total: number;
  completion_tokens_total: number;
  /** Outputs cut at max-new-tokens (finish reason `length`): their last pair may be lost or partial. */
  truncated_texts: number;
  truncation_rate: number;
}

export async function roundAggregates(ch: ClickHouseClient, runId?: string): Promise<RoundAggregate[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(ch, `SELECT * FROM round_aggregates WHERE ${f.where} ORDER BY run_id, round`, f.params);
  return rows.map((r) => numeric<RoundAggregate>(r));
}

export async function metricRowCounts(ch: ClickHouseClient, runId: string): Promise<{ synthesis: number; evaluation: number; judgement: number }> {
  const f = await runFilter(ch, runId);
  const [s] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM synthesis_metrics FINAL WHERE ${f.where}`, f.params);
  const [e] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM evaluations FINAL WHERE ${f.where}`, f.params);
  const [j] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM judgements FINAL WHERE ${f.where}`, f.params);
  return { synthesis: Number(s?.n ?? 0), evaluation: Number(e?.n ?? 0), judgement: Number(j?.n ?? 0) };
}

export interface F1Row {
  dataset: string;
  shots: number;
  seen: number;
  records: number;
  f1: number;
  exact_match: number;
}

export async function f1ByDataset(ch: ClickHouseClient, runId?: string): Promise<F1Row[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT dataset, shots, seen, count() AS records, avg(f1) AS f1, avg(exact_match) AS exact_match FROM evaluations FINAL WHERE ${f.where} GROUP BY dataset, shots, seen ORDER BY dataset, shots, seen`,
    f.params,
  );
  return rows.map((r) => numeric<F1Row>(r));
}

export interface ThroughputPoint {
  minute: string;
  round: number;
  texts: number;
  pairs: number;
}

// 10-second buckets, written so that ClickHouse 18.16 (no toStartOfInterval) accepts them too.
const BUCKET = 'toString(toDateTime(intDiv(toUInt32(time), 10) * 10))';

/** Synthesized texts and pairs per 10-second bucket and round. */
export async function throughput(ch: ClickHouseClient, runId?: string): Promise<ThroughputPoint[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT ${BUCKET} AS minute, round, count() AS texts, sum(pairs) AS pairs FROM synthesis_metrics FINAL WHERE ${f.where} GROUP BY minute, round ORDER BY minute, round`,
    f.params,
  );
  return rows.map((r) => ({ ...numeric<ThroughputPoint>(r), minute: String(r.minute) }));
}

export interface LagPoint {
  minute: string;
  stage: string;
  lag: number;
}

export async function lagOverTime(ch: ClickHouseClient): Promise<LagPoint[]> {
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT ${BUCKET} AS minute, stage, max(lag) AS lag FROM consumer_lag WHERE time > now() - 86400 GROUP BY minute, stage ORDER BY minute, stage`,
  );
  return rows.map((r) => ({ ...numeric<LagPoint>(r), minute: String(r.minute) }));
}

export async function runIds(ch: ClickHouseClient): Promise<{ run_id: string; texts: number; last: string }[]> {
  const rows = await queryRows<Record<string, unknown>>(ch, 'SELECT run_id, count() AS texts, toString(max(time)) AS last FROM synthesis_metrics FINAL GROUP BY run_id ORDER BY last DESC LIMIT 50');
  return rows.map((r) => ({ run_id: String(r.run_id), texts: Number(r.texts), last: String(r.last) }));
}

export interface TrainingPoint {
  run_id: string;
  job: string;
  step: number;
  loss: number;
  held_out_loss: number | null;
  tokens_per_second: number;
  mfu: number | null;
}

/** The built-in trainer's logged steps (trainer_steps): the run's, or the latest 2,000 over all runs. */
export async function trainingCurve(ch: ClickHouseClient, runId?: string): Promise<TrainingPoint[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT run_id, job, step, loss, held_out_loss, tokens_per_second, mfu FROM (SELECT * FROM trainer_steps FINAL WHERE ${f.where} ORDER BY time_ms DESC LIMIT 2000) ORDER BY run_id, job, step`,
    f.params,
  );
  return rows.map((r) => numeric<TrainingPoint>(r));
}

export interface DeadLetterGroup {
  stage: string;
  failure: string;
  reason: string;
  records: number;
  last: string;
}

export interface DeadLetterEntry {
  time: string;
  stage: string;
  failure: string;
  record_key: string;
  reason: string;
}

/** Dead letters by stage, failure (decode, handler, encode) and reason (its first 120 characters), most first. */
export async function deadLetterGroups(ch: ClickHouseClient, runId?: string): Promise<DeadLetterGroup[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT stage, failure, substring(reason, 1, 120) AS reason, count() AS records, toString(max(time)) AS last FROM dead_letters FINAL WHERE ${f.where} GROUP BY stage, failure, reason ORDER BY records DESC, stage LIMIT 50`,
    f.params,
  );
  return rows.map((r) => numeric<DeadLetterGroup>(r));
}

/** The latest dead letters, each with its record's key and reason. */
export async function recentDeadLetters(ch: ClickHouseClient, runId?: string, limit = 20): Promise<DeadLetterEntry[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT toString(time) AS time, stage, failure, record_key, reason FROM dead_letters FINAL WHERE ${f.where} ORDER BY time_ms DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
    f.params,
  );
  return rows.map((r) => numeric<DeadLetterEntry>(r));
}

export interface HistogramBin {
  /** pairs (per text), answer_chars (mean answer length of a text, in characters) or grounding. */
  metric: string;
  round: number;
  /** The bin's lower edge; the last bin of pairs and answer_chars also holds everything above it. */
  bin: number;
  texts: number;
}

/**
 * Distributions over the run's synthesized texts, by round: pairs per text (0–20, the last bin 20 or more), a
 * text's mean answer length (50-character bins up to 1,000 or more) and its grounding (tenths). Texts without pairs
 * count in the pairs histogram only; failed texts in none.
 */
export async function histograms(ch: ClickHouseClient, runId?: string): Promise<HistogramBin[]> {
  const f = await runFilter(ch, runId);
  const from = `FROM synthesis_metrics FINAL WHERE ${f.where} AND outcome = 'ok'`;
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT metric, round, bin, texts FROM (
      SELECT 'pairs' AS metric, round, toFloat64(least(pairs, 20)) AS bin, count() AS texts ${from} GROUP BY round, bin
      UNION ALL SELECT 'answer_chars' AS metric, round, toFloat64(least(intDiv(intDiv(answer_chars, pairs), 50) * 50, 1000)) AS bin, count() AS texts ${from} AND pairs > 0 GROUP BY round, bin
      UNION ALL SELECT 'grounding' AS metric, round, floor(least(grounding, 0.999) * 10) / 10 AS bin, count() AS texts ${from} AND pairs > 0 GROUP BY round, bin
    ) ORDER BY metric, round, bin`,
    f.params,
  );
  return rows.map((r) => ({ metric: String(r.metric), round: Number(r.round), bin: Number(r.bin), texts: Number(r.texts) }));
}

export interface PairSampleRow {
  round: number;
  record_id: string;
  time: string;
  few_shot: number;
  pair_index: number;
  kind: string;
  question: string;
  answer: string;
  context: string;
  context_chars: number;
}

export const PAIR_KIND_FILTERS = ['free', 'mc', 'cot', 'mc-cot', 'malformed-cot'] as const;

/**
 * The latest sampled pairs (pair_samples) per round: up to `perRound` pairs of the most recent sampled texts, of one
 * kind when `kind` is given. Over all runs when none is named.
 */
export async function latestPairSamples(ch: ClickHouseClient, runId?: string, kind?: string, perRound = 12): Promise<PairSampleRow[]> {
  const f = await runFilter(ch, runId);
  if (kind !== undefined && !(PAIR_KIND_FILTERS as readonly string[]).includes(kind)) throw new Error(`pair kind "${kind}": expected one of ${PAIR_KIND_FILTERS.join(', ')}`);
  const byKind = kind === undefined ? '' : ` AND kind = ${sqlString(kind)}`;
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT round, record_id, toString(time) AS time, few_shot, pair_index, kind, question, answer, context, context_chars
     FROM pair_samples FINAL WHERE ${f.where}${byKind}
     ORDER BY round, time_ms DESC, record_id, pair_index LIMIT ${Math.max(1, Math.floor(perRound))} BY round`,
    f.params,
  );
  return rows.map((r) => ({
    round: Number(r.round), record_id: String(r.record_id), time: String(r.time), few_shot: Number(r.few_shot), pair_index: Number(r.pair_index),
    kind: String(r.kind), question: String(r.question), answer: String(r.answer), context: String(r.context), context_chars: Number(r.context_chars),
  }));
}

export interface MixSharePoint {
  minute: string;
  run_id: string;
  /** The highest mix index the run reached in the bucket. */
  last_mix_index: number;
  domain_tokens: number;
  general_tokens: number;
}

/** Each run's mixed tokens per source as of the end of each 10-second bucket (the latest counts the mixer wrote in it). */
export async function mixShareOverTime(ch: ClickHouseClient, runId?: string): Promise<MixSharePoint[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT ${BUCKET} AS minute, run_id, max(mix_index) AS last_mix_index, argMax(domain_tokens, mix_index) AS domain_tokens, argMax(general_tokens, mix_index) AS general_tokens
     FROM mix_progress FINAL WHERE ${f.where} GROUP BY minute, run_id ORDER BY minute, run_id`,
    f.params,
  );
  return rows.map((r) => ({ ...numeric<MixSharePoint>(r), minute: String(r.minute), run_id: String(r.run_id) }));
}
