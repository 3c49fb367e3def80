import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clickhouseCredentials } from '../../processors/runtime/service-credentials.ts';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { packagePath } from '../../processors/runtime/package-root.ts';

export const MIGRATIONS_DIR = packagePath('connectors', 'clickhouse', 'migrations');

// Which server each client talks to, so that an error about it can name it (the client does not expose its URL).
const urls = new WeakMap<ClickHouseClient, string>();

export function clickhouseClient(url: string, database = 'default'): ClickHouseClient {
  // Debian's ClickHouse 18.16 rejects settings it does not know, so none are sent beyond the defaults. The client's
  // own logging is off: it would print every failed request (each retry during an outage), and every failure
  // reaches its caller anyway, which decides what is worth a log line.
  const credentials = clickhouseCredentials();
  const ch = createClient({ url, database, ...(credentials ?? {}), request_timeout: 60_000, clickhouse_settings: {}, log: { level: ClickHouseLogLevel.OFF } });
  urls.set(ch, url);
  return ch;
}

/** The URL a client made by clickhouseClient talks to, with any password masked: for messages and logs. */
export function clickhouseUrlOf(ch: ClickHouseClient): string | undefined {
  const url = urls.get(ch);
  return url === undefined ? undefined : displayUrl(url);
}

export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * Creates the database and applies the migrations in migrations/ beside this file that have not run yet, in file
 * order, recording each in `schema_migrations`. The SQL is written for both ClickHouse 18.16 and current releases.
 */
export async function migrate(url: string, database: string): Promise<string[]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new Error(`ClickHouse database name "${database}" must be letters, digits and "_"`);
  const root = clickhouseClient(url);
  try {
    await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  } finally {
    await root.close();
  }
  const ch = clickhouseClient(url, database);
  const applied: string[] = [];
  try {
    await ch.command({ query: 'CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_ms UInt64) ENGINE = TinyLog' });
    const done = new Set((await (await ch.query({ query: 'SELECT name FROM schema_migrations', format: 'JSONEachRow' })).json<{ name: string }>()).map((r) => r.name));
    for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort()) {
      if (done.has(file)) continue;
      const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8').replace(/^--.*$/gm, '');
      for (const statement of sql.split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) {
        try {
          await ch.command({ query: statement });
        } catch (err) {
          throw new Error(`ClickHouse migration ${file} failed: ${(err as Error).message}`);
        }
      }
      await ch.insert({ table: 'schema_migrations', values: [{ name: file, applied_ms: Date.now() }], format: 'JSONEachRow' });
      applied.push(file);
    }
  } finally {
    await ch.close();
  }
  return applied;
}

/** Runs a query and returns its rows. */
export async function queryRows<T>(ch: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.query({ query, format: 'JSONEachRow', query_params: params });
  return rs.json<T>();
}
