import type { ClickHouseClient } from '@clickhouse/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InserterLogger } from '../../connectors/clickhouse/batch-inserter.ts';
import { clickhouseClient, migrate, queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { metricsSinkProcessor } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { metricRowCounts } from '../../connectors/clickhouse/run-queries.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { METRIC_DEFAULTS, type MetricEventBatchRecord, type MetricEventRecord } from '../../processors/pipeline/records.ts';
import { deadLetterTopic, type HandlerResult } from '../../processors/runtime/processor.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { createTopics, logger, serdeFor, testConfig, testKafka, topicSize, uniq } from './helpers.ts';
import { startScratchClickhouse, type ScratchClickhouse } from './scratch-clickhouse.ts';

// The sink's handler against a clickhouse-server of the test's own, stopped and started again mid-stream. The
// shared stack's ClickHouse is not touched.

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger: InserterLogger = { warn: at('warn'), info: at('info'), error: at('error') };
  return { lines, logger, of: (level: string) => lines.filter((l) => l.level === level) };
}

function event(runId: string, i: number, patch: Partial<MetricEventRecord> = {}): MetricEventRecord {
  const kind = i % 4 === 3 ? 'evaluation' : 'synthesis';
  return { ...METRIC_DEFAULTS, id: `${runId}-m${i}`, kind, runId, recordId: `t${i}`, time: 1_700_000_000_000 + i, outcome: 'ok', pairs: 3, parsedPieces: 3, dataset: 'd', f1: 0.5, ...patch };
}

type Sink = ReturnType<typeof metricsSinkProcessor>;
const handle = async (sink: Sink, value: MetricEventBatchRecord, offset: number): Promise<HandlerResult<never>> =>
  sink.spec.handle({ key: `${value.events[0]?.runId}/metric-events`, value, headers: {}, timestamp: '0', source: { topic: 'outage.metrics', partition: 0, offset: String(offset) } });

let server: ScratchClickhouse;
let ch: ClickHouseClient;
const DB = 'outage_test';

beforeAll(async () => {
  server = await startScratchClickhouse();
  await migrate(server.url, DB);
  ch = clickhouseClient(server.url, DB);
});

afterAll(async () => {
  await ch?.close();
  await server?.dispose();
});

describe('ClickHouse sink across a ClickHouse outage (a real clickhouse-server, stopped and restarted)', () => {
  it('holds the batches while ClickHouse is down and stores every row exactly once after it is back; nothing dead-lettered', async () => {
    const runId = 'outage-run';
    const log = recordingLogger();
    const sink = metricsSinkProcessor(pipelineTopics('outage'), ch, { logger: log.logger, outageMs: 120_000 });
    // 2,000 events in 100 records of 20, consumed as the runtime does: per partition, chunks of records handled
    // concurrently, the next chunk only after the last one's handlers resolved (that is when offsets are committed).
    const records: MetricEventBatchRecord[] = Array.from({ length: 100 }, (_, r) => ({ events: Array.from({ length: 20 }, (_, e) => event(runId, r * 20 + e)) }));
    const outcomes: { offset: number; result?: HandlerResult<never>; error?: unknown; at: number }[] = [];
    const started = Date.now();
    const partition = async (offsets: number[]) => {
      for (let i = 0; i < offsets.length; i += 5) {
        const chunk = offsets.slice(i, i + 5);
        await Promise.all(
          chunk.map((o) =>
            handle(sink, records[o]!, o).then(
              (result) => void outcomes.push({ offset: o, result, at: Date.now() - started }),
              (error) => void outcomes.push({ offset: o, error, at: Date.now() - started }),
            ),
          ),
        );
        await sleep(100);
      }
    };
    const partitions = Promise.all([partition(records.map((_, i) => i).filter((i) => i % 2 === 0)), partition(records.map((_, i) => i).filter((i) => i % 2 === 1))]);

    await sleep(700);
    const before = await metricRowCounts(ch, runId);
    // Killed, not terminated: a SIGTERMed 18.16 server goes on answering a busy keep-alive connection for up to
    // ~18 s before it exits, which would only make the test longer; a kill also cuts inserts off mid-request.
    await server.stop('SIGKILL');
    const down = Date.now() - started;
    await sleep(6_000);
    const settledWhileDown = outcomes.filter((o) => o.at >= down + 1000).length;
    await server.start();
    const up = Date.now() - started;
    await partitions;

    // The stream was under way when ClickHouse went down, and its records were held (not settled) while it was down.
    expect(before.synthesis + before.evaluation).toBeGreaterThan(0);
    expect(before.synthesis + before.evaluation).toBeLessThan(2000);
    expect(settledWhileDown).toBe(0);
    expect(Math.max(...outcomes.map((o) => o.at))).toBeGreaterThanOrEqual(up);
    expect(outcomes).toHaveLength(100);
    expect(outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual([]);
    expect(outcomes.filter((o) => !(Array.isArray(o.result) && o.result.length === 0)).map((o) => o.result)).toEqual([]);

    expect(await metricRowCounts(ch, runId)).toEqual({ synthesis: 1500, evaluation: 500, judgement: 0 });
    const [distinct] = await queryRows<{ s: string; e: string }>(
      ch,
      `SELECT (SELECT uniqExact(id) FROM synthesis_metrics WHERE run_id = '${runId}') AS s, (SELECT uniqExact(id) FROM evaluations WHERE run_id = '${runId}') AS e`,
    );
    expect({ s: Number(distinct!.s), e: Number(distinct!.e) }).toEqual({ s: 1500, e: 500 });

    // One warning when the outage began and one line when it ended, with how long it lasted; not one per retry.
    expect(log.of('warn')).toHaveLength(1);
    expect(log.of('warn')[0]!.obj.clickhouse).toBe(server.url);
    expect(log.of('info')).toHaveLength(1);
    expect(log.of('info')[0]!.obj.outageMs).toBeGreaterThanOrEqual(5_000);
    expect(log.of('info')[0]!.obj.failedAttempts).toBeGreaterThan(1);
    expect(log.of('error')).toHaveLength(0);

    // Records handled again (a rebalance re-reads from the last commit) replace their rows: counts stay.
    await Promise.all(records.slice(0, 10).map((r, i) => handle(sink, r, i)));
    expect(await metricRowCounts(ch, runId)).toEqual({ synthesis: 1500, evaluation: 500, judgement: 0 });
  });

  it('dead-letters only the events whose rows ClickHouse refuses as data, with the reason; the others are stored', async () => {
    const runId = 'bad-rows-run';
    const log = recordingLogger();
    const sink = metricsSinkProcessor(pipelineTopics('outage'), ch, { logger: log.logger, outageMs: 10_000 });
    const withBad: MetricEventBatchRecord = {
      events: Array.from({ length: 40 }, (_, i) => event(runId, i, i === 5 ? { pairs: -1 } : i === 30 ? { kind: 'synthesis', promptTokens: -7 } : {})),
    };
    const good: MetricEventBatchRecord = { events: Array.from({ length: 40 }, (_, i) => event(runId, 100 + i)) };
    // Both records' rows share the inserter's batches, as records of one chunk do.
    const [bad, ok] = await Promise.all([handle(sink, withBad, 0), handle(sink, good, 1)]);
    expect(ok).toEqual([]);
    expect(Array.isArray(bad)).toBe(false);
    const reason = (bad as { deadLetter: string }).deadLetter;
    expect(reason).toMatch(/^2 of 40 events not stored: /);
    expect(reason).toContain(`metric event ${runId}-m5: synthesis_metrics: ClickHouse refused the row (code 72)`);
    expect(reason).toContain(`metric event ${runId}-m30: synthesis_metrics: ClickHouse refused the row`);
    expect(reason).not.toMatch(new RegExp(`${runId}-m(?!5:|30:)\\d+`));
    expect(await metricRowCounts(ch, runId)).toEqual({ synthesis: 60 - 2, evaluation: 20, judgement: 0 });
    expect(log.lines).toEqual([]);
  });

  it('dead-letters the events of a table that is not there (no migration for it), stores the rest, and does not wait', async () => {
    const db = 'outage_no_evaluations';
    await migrate(server.url, db);
    const other = clickhouseClient(server.url, db);
    try {
      await other.command({ query: 'DROP TABLE evaluations' });
      const runId = 'no-table-run';
      const sink = metricsSinkProcessor(pipelineTopics('outage'), other, { logger: recordingLogger().logger, outageMs: 60_000 });
      const started = Date.now();
      const result = await handle(sink, { events: Array.from({ length: 8 }, (_, i) => event(runId, i)) }, 0);
      expect(Date.now() - started).toBeLessThan(5_000);
      const reason = (result as { deadLetter: string }).deadLetter;
      expect(reason).toMatch(/^2 of 8 events not stored: /);
      expect(reason).toContain(`metric event ${runId}-m3: evaluations: ClickHouse refused the rows (code 60)`);
      expect(reason).toContain(`metric event ${runId}-m7: evaluations:`);
      const [n] = await queryRows<{ n: string }>(other, `SELECT count() AS n FROM synthesis_metrics FINAL WHERE run_id = '${runId}'`);
      expect(Number(n!.n)).toBe(6);
    } finally {
      await other.close();
    }
  });

  it('on the runtime with Kafka: a sink whose ClickHouse is killed mid-stream dead-letters nothing and loses nothing', async () => {
    const kafka = testKafka();
    const topics = pipelineTopics(uniq('itch'));
    const runId = 'runtime-outage-run';
    await createTopics(kafka, [topics.metrics], 2);
    const serde = await serdeFor([topics.metrics], 'metric-event-batch');
    const schema = loadSchema('metric-event-batch');
    const messages = Array.from({ length: 100 }, (_, r) => ({
      key: `${runId}/metric-events/${r}`,
      value: serde.encode(topics.metrics, schema, { events: Array.from({ length: 20 }, (_, e) => event(runId, r * 20 + e)) }),
    }));
    const total = async () => Object.values(await metricRowCounts(ch, runId)).reduce((a, b) => a + b, 0);
    const log = recordingLogger();
    const sink = metricsSinkProcessor(topics, ch, { logger: log.logger, outageMs: 120_000 });
    await produceAll(kafka, topics.metrics, messages.slice(0, 50));
    const proc = await startProcessor(sink.spec, testConfig({ batchSize: 5, concurrency: 5 }), { logger });
    try {
      const deadline = Date.now() + 60_000;
      while ((await total()) < 1000 && Date.now() < deadline) await sleep(100);
      await server.stop('SIGKILL');
      // The rest of the stream arrives while ClickHouse is down.
      await produceAll(kafka, topics.metrics, messages.slice(50));
      await sleep(6_000);
      expect(await topicSize(kafka, deadLetterTopic(sink.spec.name))).toBe(0);
      await server.start();
      while ((await total()) < 2000 && Date.now() < deadline + 30_000) await sleep(200);
      expect(await metricRowCounts(ch, runId)).toEqual({ synthesis: 1500, evaluation: 500, judgement: 0 });
      await sleep(1000);
      expect(await topicSize(kafka, deadLetterTopic(sink.spec.name))).toBe(0);
      expect(log.of('warn')).toHaveLength(1);
      expect(log.of('info')).toHaveLength(1);
    } finally {
      await proc.stop();
    }
  });
});
