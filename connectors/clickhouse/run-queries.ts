import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from './clickhouse.ts';

/**
 * A ClickHouse string literal (query parameters are not available on every supported server release). Inside quotes
 * only the backslash and the quote are special; NUL is escaped too, so no reader of the query text ever sees one.
 */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\u0000/g, '\\0')}'`;
}

const runFilter = (runId: string | undefined) => (runId === undefined ? '1' : `run_id = ${sqlString(runId)}`);

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
}

// JSON output quotes 64-bit integers; numbers are what callers want.
const numeric = <T>(row: Record<string, unknown>): T => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && k !== 'run_id' && k !== 'dataset' && k !== 'stage' && k !== 'topic' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v])) as T;

export async function roundAggregates(ch: ClickHouseClient, runId?: string): Promise<RoundAggregate[]> {
  const rows = await queryRows<Record<string, unknown>>(ch, `SELECT * FROM round_aggregates WHERE ${runFilter(runId)} ORDER BY run_id, round`);
  return rows.map((r) => numeric<RoundAggregate>(r));
}

export async function metricRowCounts(ch: ClickHouseClient, runId: string): Promise<{ synthesis: number; evaluation: number }> {
  const [s] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM synthesis_metrics FINAL WHERE ${runFilter(runId)}`);
  const [e] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM evaluations FINAL WHERE ${runFilter(runId)}`);
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
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT dataset, shots, seen, count() AS records, avg(f1) AS f1, avg(exact_match) AS exact_match FROM evaluations FINAL WHERE ${runFilter(runId)} GROUP BY dataset, shots, seen ORDER BY dataset, shots, seen`,
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
  const rows = await queryRows<Record<string, unknown>>(
    ch,
    `SELECT ${BUCKET} AS minute, round, count() AS texts, sum(pairs) AS pairs FROM synthesis_metrics FINAL WHERE ${runFilter(runId)} GROUP BY minute, round ORDER BY minute, round`,
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
