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
export async function runFilter(ch: ClickHouseClient, runId: string | undefined): Promise<{ where: string; params: Record<string, unknown> }> {
  if (runId === undefined) return { where: '1', params: {} };
  if (await supportsQueryParameters(ch)) return { where: 'run_id = {run:String}', params: { run: runId } };
  return { where: `run_id = ${sqlString(runId)}`, params: {} };
}

// JSON output quotes 64-bit integers; numbers are what callers want.
const TEXT_COLUMNS = new Set(['run_id', 'dataset', 'stage', 'topic', 'job', 'failure', 'reason', 'record_key', 'time', 'judge_model', 'category']);
export const numeric = <T>(row: Record<string, unknown>): T => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && !TEXT_COLUMNS.has(k) && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v])) as T;
