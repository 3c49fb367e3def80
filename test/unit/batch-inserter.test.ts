import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { BatchInserter, ClickHouseOutageError, DEFAULT_OUTAGE_MS, outageBudgetMs, type InserterLogger } from '../../connectors/clickhouse/batch-inserter.ts';
import { classifyInsertError } from '../../connectors/clickhouse/insert-errors.ts';
import { backoffDelay } from '../../processors/runtime/backoff.ts';
import { clickhouseClient, clickhouseUrlOf } from '../../connectors/clickhouse/clickhouse.ts';
import { metricsSinkProcessor } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { METRIC_DEFAULTS, type MetricEventBatchRecord } from '../../processors/pipeline/records.ts';
import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { freePort } from '../fixtures/free-port.ts';

// Error texts exactly as Debian's ClickHouse 18.16 answers them (HTTP interface, JSONEachRow inserts).
const ch18 = (code: number, text: string) => new Error(`Code: ${code}, e.displayText() = DB::Exception: ${text}, e.what() = DB::Exception\n`);
const nodeError = (code: string, msg: string) => Object.assign(new Error(msg), { code });

function recordingLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const logger: InserterLogger = {
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { lines, logger, count: (level: string) => lines.filter((l) => l.level === level).length };
}

describe('classifyInsertError', () => {
  it('takes an unreachable or overloaded server for transient', () => {
    for (const err of [
      nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8123'),
      nodeError('ECONNRESET', 'read ECONNRESET'),
      nodeError('ECONNRESET', 'socket hang up'),
      nodeError('EPIPE', 'write EPIPE'),
      new Error('Timeout error.'),
      new Error('<html><body><h1>502 Bad Gateway</h1></body></html>'),
      new Error('<html><body><h1>503 Service Unavailable</h1></body></html>'),
      ch18(252, 'Too many parts (300). Merges are processing significantly slower than inserts.'),
      new ClickHouseError({ message: 'Too many parts (600). Merges are processing significantly slower than inserts. ', code: '252', type: 'TOO_MANY_PARTS' }),
      ch18(241, 'Memory limit (for query) exceeded: would use 9.31 GiB'),
      ch18(202, 'Too many simultaneous queries. Maximum: 100'),
      ch18(159, 'Timeout exceeded: elapsed 300.0 seconds'),
      ch18(210, 'Connection refused'),
    ]) {
      expect(classifyInsertError(err).kind, err.message).toBe('transient');
    }
  });

  it('takes a value that does not fit its column for a refused row, with the row when the server names it', () => {
    const badType = classifyInsertError(ch18(27, 'Cannot parse input: expected " before: x"}\\n{"lag":1}\\n: (while read the value of key lag): (at row 2)\n'));
    expect(badType).toMatchObject({ kind: 'rows', code: 27, row: 2 });
    expect(badType.reason).toContain('while read the value of key lag');
    expect(badType.reason).not.toContain('at row');
    expect(classifyInsertError(ch18(72, "Unsigned type must not contain '-' symbol: (while read the value of key pairs): (at row 1)\n"))).toMatchObject({ kind: 'rows', code: 72, row: 1 });
    expect(classifyInsertError(ch18(26, 'Cannot parse JSON string: expected opening quote: (while read the value of key stage)'))).toMatchObject({ kind: 'rows', code: 26, row: undefined });
    expect(classifyInsertError(new ClickHouseError({ message: 'Cannot parse input: expected \'"\' before: \'x\': (while reading the value of key lag): (at row 3)\n: ', code: '27', type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' }))).toMatchObject({ kind: 'rows', row: 3 });
    expect(classifyInsertError(new TypeError('Do not know how to serialize a BigInt')).kind).toBe('rows');
  });

  it('takes a table that is not what the rows expect for refusing them all', () => {
    expect(classifyInsertError(ch18(60, "Table metrics.nope doesn't exist."))).toMatchObject({ kind: 'table', code: 60 });
    expect(classifyInsertError(ch18(81, "Database nodb doesn't exist"))).toMatchObject({ kind: 'table', code: 81 });
    expect(classifyInsertError(ch18(117, 'Unknown field found while parsing JSONEachRow format: extra: (at row 1)\n'))).toMatchObject({ kind: 'table', code: 117 });
    expect(classifyInsertError(ch18(16, 'There is no column with name kind_free in table'))).toMatchObject({ kind: 'table' });
    expect(classifyInsertError(new ClickHouseError({ message: 'Table default.nope does not exist. ', code: '60', type: 'UNKNOWN_TABLE' }))).toMatchObject({ kind: 'table', code: 60 });
    expect(classifyInsertError(ch18(60, "Table metrics.nope doesn't exist.")).reason).toBe("ClickHouse refused the rows (code 60): Table metrics.nope doesn't exist.");
  });
});

describe('backoffDelay', () => {
  it('doubles from the base up to the cap, each wait drawn from the upper half', () => {
    const opts = { baseMs: 100, capMs: 1000 };
    expect([0, 1, 2, 3, 4, 10, 1000].map((a) => backoffDelay(a, opts, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, opts, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, opts);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe('outage budget (IPT_CLICKHOUSE_OUTAGE_MS)', () => {
  it('defaults to 10 minutes and takes whole milliseconds', () => {
    expect(outageBudgetMs({})).toBe(DEFAULT_OUTAGE_MS);
    expect(DEFAULT_OUTAGE_MS).toBe(600_000);
    expect(outageBudgetMs({ IPT_CLICKHOUSE_OUTAGE_MS: '' })).toBe(DEFAULT_OUTAGE_MS);
    expect(outageBudgetMs({ IPT_CLICKHOUSE_OUTAGE_MS: '30000' })).toBe(30_000);
    expect(outageBudgetMs({ IPT_CLICKHOUSE_OUTAGE_MS: '0' })).toBe(0);
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['10m', '-1', '1.5', '1e3', ' 5000', '5000 ', 'abc', '0x10', '99999999999999999999']) {
      expect(() => outageBudgetMs({ IPT_CLICKHOUSE_OUTAGE_MS: bad }), bad).toThrow(ConfigError);
      expect(() => outageBudgetMs({ IPT_CLICKHOUSE_OUTAGE_MS: bad }), bad).toThrow(/IPT_CLICKHOUSE_OUTAGE_MS/);
    }
  });
});

describe('BatchInserter while ClickHouse is unreachable (a real client, a port nobody listens on)', () => {
  it('retries until the outage budget is spent, then fails loudly naming ClickHouse and its URL; one warning, no line per retry', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const ch = clickhouseClient(url, 'metrics');
    const log = recordingLogger();
    let attempts = 0;
    const counting = new Proxy(ch, { get: (t, p) => (p === 'insert' ? (...a: Parameters<typeof ch.insert>) => (attempts++, t.insert(...a)) : Reflect.get(t, p)) });
    const inserter = new BatchInserter(counting, 1000, 10, { outageMs: 800, backoff: { baseMs: 20, capMs: 100 }, logger: log.logger, url });
    try {
      const started = Date.now();
      const outcomes = await Promise.allSettled([1, 2, 3].map((i) => inserter.add('synthesis_metrics', { id: `r${i}` })));
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(780);
      expect(attempts).toBeGreaterThan(3);
      for (const o of outcomes) {
        expect(o.status).toBe('rejected');
        const err = (o as PromiseRejectedResult).reason as Error;
        expect(err).toBeInstanceOf(ClickHouseOutageError);
        expect(err.message).toContain(`ClickHouse at ${url}`);
        expect(err.message).toContain('IPT_CLICKHOUSE_OUTAGE_MS=800');
        expect(err.message).toContain('ECONNREFUSED');
      }
      expect(log.count('warn')).toBe(1);
      expect(log.count('error')).toBe(1);
      expect(log.count('info')).toBe(0);
      expect(inserter.outageSince).toBeDefined();

      // Past the budget a still-unreachable server fails each new batch at once instead of holding it again.
      const again = Date.now();
      await expect(inserter.add('synthesis_metrics', { id: 'r4' })).rejects.toBeInstanceOf(ClickHouseOutageError);
      expect(Date.now() - again).toBeLessThan(500);
      expect(log.count('warn')).toBe(1);
      expect(inserter.inserted).toBe(0);
    } finally {
      await ch.close();
    }
  });

  it('holds rows without rejecting them while within the budget, and close() gives them up at once', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const ch = clickhouseClient(url, 'metrics');
    const log = recordingLogger();
    const inserter = new BatchInserter(ch, 1000, 10, { outageMs: 60_000, backoff: { baseMs: 20, capMs: 200 }, logger: log.logger });
    try {
      let settled = false;
      const held = inserter.add('evaluations', { id: 'e1' }).finally(() => (settled = true));
      held.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 600));
      expect(settled).toBe(false);
      expect(log.count('warn')).toBe(1);
      const closing = Date.now();
      await inserter.close();
      await expect(held).rejects.toThrow(/ClickHouse at http:\/\/127\.0\.0\.1:\d+ unreachable .*closed/);
      expect(Date.now() - closing).toBeLessThan(1000);
    } finally {
      await ch.close();
    }
  });

  it('takes the URL from the client, with any password masked', () => {
    const ch = clickhouseClient('http://writer:s3cret@127.0.0.1:8123', 'metrics');
    expect(clickhouseUrlOf(ch)).toBe('http://writer:***@127.0.0.1:8123');
    void ch.close();
  });

  it('makes the metrics sink fail the batch (not hold it for ever) once the budget is spent, naming ClickHouse and the URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const ch = clickhouseClient(url, 'metrics');
    const log = recordingLogger();
    const sink = metricsSinkProcessor(pipelineTopics('unit'), ch, { outageMs: 300, backoff: { baseMs: 20, capMs: 50 }, logger: log.logger });
    const value: MetricEventBatchRecord = { events: [{ ...METRIC_DEFAULTS, id: 'm1', kind: 'synthesis', runId: 'r', recordId: 't1', time: Date.now() }] };
    try {
      await expect(Promise.resolve(sink.spec.handle({ key: 'r/metric-events', value, headers: {}, timestamp: '0', source: { topic: 'unit.metrics', partition: 0, offset: '0' } }))).rejects.toThrow(
        new RegExp(`ClickHouse at ${url.replace(/\./g, '\\.')} unreachable`),
      );
    } finally {
      await ch.close();
    }
  });
});
