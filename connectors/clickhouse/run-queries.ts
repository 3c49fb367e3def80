import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { queryRows } from './clickhouse.ts';

/**
 * A ClickHouse string literal, for servers without query parameters (see supportsQueryParameters). Inside quotes
 * only the backslash and the quote are special; NUL is escaped too, so no reader of the query text ever sees one.
 */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\u0000/g, '\\0')}'`;
}

// Quote, backslash, NUL and non-ASCII: what a server that mangled parameter values would get wrong.
const PROBE = "it's a \\ probe \u0000 é";
const parameterSupport = new WeakMap<ClickHouseClient, Promise<boolean>>();

/**
 * Whether the server takes query parameters ({name:Type} in the query, values sent apart from it): asked once per
 * client with a query that uses one. Debian's 18.16 has none (it refuses the value as an unknown setting), newer
 * releases do. A server's refusal is remembered; a failed connection is not, so the next query asks again.
 */
export function supportsQueryParameters(ch: ClickHouseClient): Promise<boolean> {
  let known = parameterSupport.get(ch);
  if (!known) {
    known = queryRows<{ p: string }>(ch, 'SELECT {probe:String} AS p', { probe: PROBE }).then(
      ([row]) => row?.p === PROBE,
      (err: unknown) => {
        if (!(err instanceof ClickHouseError)) parameterSupport.delete(ch);
        return false;
      },
    );
    parameterSupport.set(ch, known);
  }
  return known;
}

/** The WHERE condition for one run (or all): a query parameter where the server has them, else a literal. */
async function runFilter(ch: ClickHouseClient, runId: string | undefined): Promise<{ where: string; params: Record<string, unknown> }> {
  if (runId === undefined) return { where: '1', params: {} };
  if (await supportsQueryParameters(ch)) return { where: 'run_id = {run:String}', params: { run: runId } };
  return { where: `run_id = ${sqlString(runId)}`, params: {} };
}

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

// JSON output quotes 64-bit integers; numbers are what callers want.
const TEXT_COLUMNS = new Set(['run_id', 'dataset', 'stage', 'topic', 'job', 'failure', 'reason', 'record_key', 'time']);
const numeric = <T>(row: Record<string, unknown>): T => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && !TEXT_COLUMNS.has(k) && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v])) as T;

export async function roundAggregates(ch: ClickHouseClient, runId?: string): Promise<RoundAggregate[]> {
  const f = await runFilter(ch, runId);
  const rows = await queryRows<Record<string, unknown>>(ch, `SELECT * FROM round_aggregates WHERE ${f.where} ORDER BY run_id, round`, f.params);
  return rows.map((r) => numeric<RoundAggregate>(r));
}

export async function metricRowCounts(ch: ClickHouseClient, runId: string): Promise<{ synthesis: number; evaluation: number }> {
  const f = await runFilter(ch, runId);
  const [s] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM synthesis_metrics FINAL WHERE ${f.where}`, f.params);
  const [e] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM evaluations FINAL WHERE ${f.where}`, f.params);
  return { synthesis: Number(s?.n ?? 0), evaluation: Number(e?.n ?? 0) };
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
