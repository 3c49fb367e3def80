import type { ClickHouseClient } from '@clickhouse/client';
import { backoffDelay, type Backoff } from '../../processors/runtime/backoff.ts';
import { setting, SETTINGS } from '../../processors/runtime/settings.ts';
import { classifyInsertError, message, type InsertFailure } from './insert-errors.ts';
import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { createLogger, type NoticeLogger } from '../../processors/runtime/logger.ts';
import { clickhouseUrlOf } from './clickhouse.ts';

export const DEFAULT_OUTAGE_MS = SETTINGS.IPT_CLICKHOUSE_OUTAGE_MS.fallback;

/** How long ClickHouse may stay unreachable before held rows are given up (IPT_CLICKHOUSE_OUTAGE_MS). */
export const outageBudgetMs = (env: NodeJS.ProcessEnv = process.env): number => setting('IPT_CLICKHOUSE_OUTAGE_MS', env);

/** A row ClickHouse refused as data; the row's add() rejects with it. Not worth retrying. */
export class RowRejectedError extends Error {
  constructor(
    readonly table: string,
    readonly reason: string,
  ) {
    super(`${table}: ${reason}`);
    this.name = 'RowRejectedError';
  }
}

/** ClickHouse stayed unreachable beyond the outage budget (or the inserter was closed while it was). */
export class ClickHouseOutageError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ClickHouseOutageError';
  }
}

export interface InserterLogger extends NoticeLogger {
  error(obj: object, msg: string): void;
}

export interface InserterOptions {
  /** How long an outage is ridden out before held rows are given up; default IPT_CLICKHOUSE_OUTAGE_MS, else 10 minutes. */
  outageMs?: number;
  /** The server, for messages; default the URL the client was made with (clickhouseClient). */
  url?: string;
  logger?: InserterLogger;
  backoff?: Backoff;
}

interface TableBuffer {
  rows: Record<string, unknown>[];
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  timer?: NodeJS.Timeout;
}

/**
 * Collects rows per table and inserts them in batches: a batch goes out when it reaches maxRows or maxDelayMs after
 * its first row. add() resolves once its row is stored, so a processor that awaits it commits its input offsets
 * only after ClickHouse has the rows.
 *
 * While ClickHouse is unreachable a batch is retried (capped, jittered exponential backoff) and its add()s stay
 * pending: the caller holds its input, nothing is dropped. Rows are idempotent (ReplacingMergeTree on their id), so
 * an insert that landed although its answer was lost does no harm when repeated. A row ClickHouse refuses as data
 * rejects its own add() with RowRejectedError; the batch's other rows are stored. One warning is logged when an
 * outage starts and one info line when it ends.
 *
 * Why the retry is bounded (the outage budget): a caller that waits holds its partitions, so everything behind it
 * stalls and a shutdown waits too. Past the budget an outage is no longer a blip to ride out but something an
 * operator must see, so the held add()s reject with ClickHouseOutageError (naming the server) instead of the
 * pipeline stalling silently for ever.
 */
export class BatchInserter {
  private readonly buffers = new Map<string, TableBuffer>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sleepers = new Set<() => void>();
  private readonly outageMs: number;
  private readonly url: string;
  private readonly logger: InserterLogger;
  private readonly backoff: Backoff;
  private outage?: { since: number; failures: number; exhausted: boolean };
  private closed = false;
  inserted = 0;
  rejected = 0;

  constructor(
    private readonly ch: ClickHouseClient,
    private readonly maxRows = 1000,
    private readonly maxDelayMs = 100,
    opts: InserterOptions = {},
  ) {
    this.outageMs = opts.outageMs ?? outageBudgetMs();
    if (!Number.isSafeInteger(this.outageMs) || this.outageMs < 0) throw new ConfigError(`ClickHouse outage budget ${this.outageMs}: expected a whole number of milliseconds ≥ 0`);
    this.url = opts.url ?? clickhouseUrlOf(ch) ?? '(URL not known)';
    this.logger = opts.logger ?? createLogger('instruct-pt').child({ component: 'clickhouse-inserter' });
    this.backoff = opts.backoff ?? { baseMs: 200, capMs: 5_000 };
  }

  /** Whether ClickHouse is currently unreachable, and since when (ms since the epoch). */
  get outageSince(): number | undefined {
    return this.outage?.since;
  }

  add(table: string, row: Record<string, unknown>): Promise<void> {
    let b = this.buffers.get(table);
    if (!b) this.buffers.set(table, (b = { rows: [], waiters: [] }));
    const p = new Promise<void>((resolve, reject) => b!.waiters.push({ resolve, reject }));
    b.rows.push(row);
    if (b.rows.length >= this.maxRows) void this.flush(table);
    else b.timer ??= setTimeout(() => void this.flush(table), this.maxDelayMs);
    return p;
  }

  /** Sends the table's buffered rows; resolves when they are settled. Never rejects: the rows' add()s carry the outcome. */
  async flush(table: string): Promise<void> {
    const b = this.buffers.get(table);
    if (!b || b.rows.length === 0) return;
    this.buffers.delete(table);
    clearTimeout(b.timer);
    const task = this.store(table, b);
    this.inFlight.add(task);
    try {
      await task;
    } finally {
      this.inFlight.delete(task);
    }
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.buffers.keys()].map((t) => this.flush(t)));
  }

  /**
   * Stops riding out an outage: buffered rows are sent, and each batch still held gets one more attempt; whatever
   * ClickHouse does not take then rejects with ClickHouseOutageError. For a shutdown that must not wait out the budget.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    await this.flushAll();
    await Promise.all([...this.inFlight]);
  }

  private async store(table: string, b: TableBuffer): Promise<void> {
    try {
      const refused = await this.insertIsolating(table, b.rows);
      this.inserted += b.rows.length - refused.size;
      this.rejected += refused.size;
      b.waiters.forEach((w, i) => {
        const reason = refused.get(i);
        if (reason === undefined) w.resolve();
        else w.reject(new RowRejectedError(table, reason));
      });
    } catch (err) {
      const e = err instanceof ClickHouseOutageError ? err : new Error(`ClickHouse insert into ${table} (${b.rows.length} rows) at ${this.url} failed: ${message(err)}`);
      for (const w of b.waiters) w.reject(e);
    }
  }

  /**
   * Inserts the rows; a refused row is split off — the one the server names, else by halving — until every other row
   * is stored. Returns the refused rows' indexes with the reason.
   */
  private async insertIsolating(table: string, rows: Record<string, unknown>[]): Promise<Map<number, string>> {
    const refused = new Map<number, string>();
    const groups: number[][] = [rows.map((_, i) => i)];
    while (groups.length > 0) {
      const group = groups.pop()!;
      const failure = await this.insertRetrying(table, group.map((i) => rows[i]!));
      if (!failure) continue;
      if (failure.kind === 'table' || group.length === 1) {
        for (const i of group) refused.set(i, failure.reason);
        continue;
      }
      const at = failure.row;
      if (at !== undefined && at >= 1 && at <= group.length) {
        refused.set(group[at - 1]!, failure.reason);
        groups.push(group.filter((_, j) => j !== at - 1));
        continue;
      }
      const mid = Math.ceil(group.length / 2);
      groups.push(group.slice(mid), group.slice(0, mid));
    }
    return refused;
  }

  /** One insert, retried while the failure is transient; resolves with the permanent failure if there is one. */
  private async insertRetrying(table: string, rows: Record<string, unknown>[]): Promise<InsertFailure | undefined> {
    for (let attempt = 0; ; attempt++) {
      let failure: InsertFailure;
      try {
        await this.ch.insert({ table, values: rows, format: 'JSONEachRow' });
        this.reachable();
        return undefined;
      } catch (err) {
        failure = classifyInsertError(err);
      }
      if (failure.kind !== 'transient') {
        // The server answered, so it is up.
        this.reachable();
        return failure;
      }
      const outage = this.unreachable(table, rows.length, failure.reason);
      const left = outage.since + this.outageMs - Date.now();
      if (left <= 0 || this.closed) throw this.giveUp(table, rows.length, outage, failure.reason);
      await this.sleep(Math.min(backoffDelay(attempt, this.backoff), left));
    }
  }

  private unreachable(table: string, rows: number, reason: string): { since: number; failures: number; exhausted: boolean } {
    if (!this.outage) {
      this.outage = { since: Date.now(), failures: 0, exhausted: false };
      this.logger.warn({ clickhouse: this.url, table, rows, err: reason, outageBudgetMs: this.outageMs }, 'ClickHouse unreachable: holding inserts (and their input) and retrying');
    }
    this.outage.failures++;
    return this.outage;
  }

  private reachable(): void {
    if (!this.outage) return;
    const outageMs = Date.now() - this.outage.since;
    this.logger.info({ clickhouse: this.url, outageMs, failedAttempts: this.outage.failures }, `ClickHouse reachable again after ${(outageMs / 1000).toFixed(1)} s`);
    this.outage = undefined;
  }

  private giveUp(table: string, rows: number, outage: { since: number; exhausted: boolean }, reason: string): ClickHouseOutageError {
    const seconds = Math.round((Date.now() - outage.since) / 1000);
    const why = this.closed ? 'and the inserter was closed' : `beyond the outage budget (IPT_CLICKHOUSE_OUTAGE_MS=${this.outageMs})`;
    if (!outage.exhausted) {
      outage.exhausted = true;
      this.logger.error({ clickhouse: this.url, outageMs: Date.now() - outage.since, err: reason }, `ClickHouse unreachable ${why}: giving up on held inserts`);
    }
    return new ClickHouseOutageError(`ClickHouse at ${this.url} unreachable for ${seconds} s ${why}: ${rows} rows for ${table} not stored; last error: ${reason}`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
