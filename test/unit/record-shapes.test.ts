import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC_DEFAULTS, type MetricEventRecord } from '../../processors/pipeline/records.ts';
import { metricRows } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { MIGRATIONS_DIR } from '../../connectors/clickhouse/clickhouse.ts';
import { SCHEMAS_DIR } from '../../processors/runtime/schemas.ts';
import { GENERATED_RECORD_TYPES, recordTypesSource } from '../../ops/schemas/record-types-codegen.ts';

// The metric event is written in four places: its schema (the source), the defaults the stages fill in, the row the
// ClickHouse sink stores, and the tables' SQL. These checks hold the other three to the schema.

interface AvroField {
  name: string;
  default?: unknown;
}
const fields = (JSON.parse(readFileSync('schemas/metric-event.avsc', 'utf8')) as { fields: AvroField[] }).fields;

/** Column names of a table across the migrations (CREATE TABLE … ( … ) and ALTER TABLE … ADD COLUMN). */
function columns(table: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(MIGRATIONS_DIR).filter((x) => x.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(MIGRATIONS_DIR, f), 'utf8');
    const create = new RegExp(`CREATE TABLE IF NOT EXISTS ${table} \\(([\\s\\S]*?)\\n\\)`, 'm').exec(sql);
    if (create) out.push(...create[1]!.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((c) => c && !c.startsWith('--')));
    for (const alter of sql.matchAll(new RegExp(`ALTER TABLE ${table} ([^;]*);`, 'g'))) for (const m of alter[1]!.matchAll(/ADD COLUMN (?:IF NOT EXISTS )?(\w+)/g)) out.push(m[1]!);
  }
  return out;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function event(kind: 'synthesis' | 'evaluation' | 'judgement'): MetricEventRecord {
  return { ...METRIC_DEFAULTS, id: 'e', kind, runId: 'r', recordId: 'x', time: 1_700_000_000_000 };
}

describe('the metric event, one shape', () => {
  it('METRIC_DEFAULTS are the schema’s defaults, for exactly the fields that have one', () => {
    const withDefault = fields.filter((f) => f.default !== undefined);
    expect(Object.keys(METRIC_DEFAULTS).sort()).toEqual(withDefault.map((f) => f.name).sort());
    for (const f of withDefault) expect(METRIC_DEFAULTS[f.name as keyof typeof METRIC_DEFAULTS], f.name).toEqual(f.default);
  });

  it('each table’s row has exactly the table’s columns (the time column is derived by ClickHouse)', () => {
    const sample = { context: 'c', contextChars: 1, pairs: [{ question: 'q', answer: 'a', kind: 'free' }] };
    const judgement = { pairIndex: 0, judgeModel: 'j', judged: true, relevant: true, accurate: false, category: 'code', error: '', question: 'q', answer: 'a' };
    for (const kind of ['synthesis', 'evaluation', 'judgement'] as const) {
      const rows = metricRows({ ...event(kind), sample: kind === 'synthesis' ? sample : null, judgement: kind === 'judgement' ? judgement : null });
      expect(rows.length, kind).toBeGreaterThan(0);
      for (const { table, row } of rows) expect(Object.keys(row).sort(), table).toEqual(columns(table).sort());
    }
    expect(() => metricRows({ ...event('judgement'), judgement: null })).toThrow(/a judgement without its verdict/);
  });

  it('every field of the schema is stored in one of the tables (kind chooses the table)', () => {
    const stored = new Set([...columns('synthesis_metrics'), ...columns('evaluations')]);
    // The sample is stored apart, a pair_samples row per pair, and a verdict as a judgements row (checked above).
    const missing = fields.map((f) => f.name).filter((n) => n !== 'kind' && n !== 'sample' && n !== 'judgement' && !stored.has(n === 'time' ? 'time_ms' : snake(n)));
    expect(missing).toEqual([]);
  });
});

describe('the records’ TypeScript, generated from the schemas', () => {
  it('is up to date with schemas/*.avsc (npm run -s gen:records writes it)', () => {
    expect(readFileSync(GENERATED_RECORD_TYPES, 'utf8')).toBe(recordTypesSource(SCHEMAS_DIR));
  });

  it('a schema field the code does not know fails the type check, not a run: every record type is built from it', () => {
    const records = readFileSync('processors/pipeline/records.ts', 'utf8');
    // No record shape is spelled out by hand beside the generated ones (the in-memory collection entry aside).
    expect(records.match(/^export interface \w+Record\b/gm) ?? []).toEqual([]);
    const generated = readFileSync(GENERATED_RECORD_TYPES, 'utf8');
    for (const f of readdirSync(SCHEMAS_DIR).filter((x) => x.endsWith('.avsc'))) {
      const name = (JSON.parse(readFileSync(join(SCHEMAS_DIR, f), 'utf8')) as { name: string }).name;
      expect(generated, f).toContain(`export interface ${name} {`);
    }
  });
});
