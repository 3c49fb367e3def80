import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Collects rows per table and inserts them in batches: a batch goes out when it reaches maxRows or maxDelayMs after
 * its first row. add() resolves once its row is stored (or rejects with the insert's error), so a processor that
 * awaits it commits its input offsets only after ClickHouse has the rows.
 */
export class BatchInserter {
  private readonly buffers = new Map<string, { rows: Record<string, unknown>[]; waiters: { resolve: () => void; reject: (e: Error) => void }[]; timer?: NodeJS.Timeout }>();
  inserted = 0;

  constructor(
    private readonly ch: ClickHouseClient,
    private readonly maxRows = 1000,
    private readonly maxDelayMs = 100,
  ) {}

  add(table: string, row: Record<string, unknown>): Promise<void> {
    let b = this.buffers.get(table);
    if (!b) this.buffers.set(table, (b = { rows: [], waiters: [] }));
    const p = new Promise<void>((resolve, reject) => b!.waiters.push({ resolve, reject }));
    b.rows.push(row);
    if (b.rows.length >= this.maxRows) void this.flush(table);
    else b.timer ??= setTimeout(() => void this.flush(table), this.maxDelayMs);
    return p;
  }

  async flush(table: string): Promise<void> {
    const b = this.buffers.get(table);
    if (!b || b.rows.length === 0) return;
    this.buffers.delete(table);
    clearTimeout(b.timer);
    try {
      await this.ch.insert({ table, values: b.rows, format: 'JSONEachRow' });
      this.inserted += b.rows.length;
      for (const w of b.waiters) w.resolve();
    } catch (err) {
      const e = new Error(`ClickHouse insert into ${table} (${b.rows.length} rows) failed: ${(err as Error).message}`);
      for (const w of b.waiters) w.reject(e);
    }
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.buffers.keys()].map((t) => this.flush(t)));
  }
}
