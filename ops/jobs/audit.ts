import type { Kafka, KafkaMessage } from 'kafkajs';
import type { ClickHouseClient } from '@clickhouse/client';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import { runOfKey, stageGroup, STAGES, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { AugmentedTextRecord, MetricEventBatchRecord, MixedTextRecord, RawTextRecord } from '../../processors/pipeline/records.ts';
import { sqlString } from '../../connectors/clickhouse/query-filters.ts';
import { IdFlags } from './id-flags.ts';

export interface AuditOptions {
  kafka: Kafka;
  serde: AvroSerde;
  topics: PipelineTopics;
  clickhouse: ClickHouseClient;
  runId: string;
  /** How many ids to name per kind of problem. */
  sample?: number;
  /** After each batch of a topic scan: records read of the topic's records to read. */
  onProgress?: (topic: string, read: number, total: number) => void;
}

export interface AuditReport {
  runId: string;
  /** Distinct raw texts of the run in the raw topic. */
  texts: number;
  /** Raw texts stored more than once (a retried ingest). */
  ingestedTwice: number;
  converted: number;
  raw: number;
  deadLettered: number;
  accounted: number;
  /** Raw texts that are neither in an output nor dead-lettered. */
  lost: number;
  lostIds: string[];
  mixed: {
    /** Distinct mixed records of the run (domain and general). */
    records: number;
    /** Mixed records read, copies included. */
    copies: number;
    /** Mixed records present more than once. */
    duplicated: number;
    duplicatedIds: string[];
    /** Raw texts that reached the mixed stream (through a lineage). */
    domainTexts: number;
    /** Raw texts in a non-empty output that never reached the mixed stream. */
    missingFromMix: number;
  };
  metrics: {
    /** Synthesis metric events the run should have: one per text sent to synthesis that was not dead-lettered before its result. */
    expected: number;
    events: number;
    missingEvents: number;
    /** Raw texts with a synthesis row in ClickHouse (read FINAL: a replayed event replaces its row). */
    clickhouseRows: number;
    /** Metric events in Kafka with no row in ClickHouse. */
    missingRows: number;
    /** Rows for no text of the run, or several rows for one text. */
    extraRows: number;
  };
  /** Nothing lost, nothing missing from the mix, no metric event or row missing. */
  ok: boolean;
  seconds: number;
}

// Per raw-text id.
const RAW = 1;
const RAW_TWICE = 2;
const CONVERT = 4;
const CONVERTED = 8;
const KEPT_RAW = 16;
const DEAD = 32;
const DEAD_NO_OUTPUT = 64;
const MIXED = 128;
const EMPTY_OUTPUT = 256;
const METRIC = 512;
const ROW = 1024;
const EXTRA_ROW = 2048;

/**
 * Reconciles one run across its topics — raw texts → augmented texts, dead letters, the mixed stream, metric events
 * — and ClickHouse's rows, reading each topic once to its current end. State is a few bytes per id (IdFlags), not
 * the records, so a run of millions of texts fits; ids are read again only to name the first few of each problem.
 */
export async function auditRun(o: AuditOptions): Promise<AuditReport> {
  const started = Date.now();
  const { kafka, serde, topics: t, runId } = o;
  const sample = o.sample ?? 20;
  const ids = new IdFlags();
  const mixedIds = new IdFlags();
  const prefix = `${runId}/`;
  const ofRun = (m: KafkaMessage) => runOfKey(m.key?.toString()) === runId;

  const progress = (topic: string) => (o.onProgress ? (read: number, total: number) => o.onProgress!(topic, read, total) : undefined);
  const decodeAll = async <T>(topic: string, schema: string, each: (v: T, m: KafkaMessage) => void) => {
    const s = loadSchema(schema);
    await scanToEnd(kafka, topic, async (messages) => {
      const mine = messages.filter(ofRun);
      await serde.prefetch(mine.map((m) => m.value));
      for (const m of mine) {
        let v: T;
        try {
          v = serde.decode(m.value, s) as T;
        } catch {
          continue; // a record the stage could not read is in its dead-letter topic, read below
        }
        each(v, m);
      }
    }, undefined, progress(topic));
  };

  await decodeAll<RawTextRecord>(t.raw, 'raw-text', (r) => {
    if (ids.flags(r.id) & RAW) ids.mark(r.id, RAW_TWICE);
    ids.mark(r.id, RAW | (r.convert ? CONVERT : 0));
  });
  await decodeAll<AugmentedTextRecord>(t.augmented, 'augmented-text', (a) => {
    const flag = (a.converted ? CONVERTED : KEPT_RAW) | (a.text === '' ? EMPTY_OUTPUT : 0);
    for (const id of a.textIds) ids.markIfKnown(id, flag);
  });
  let copies = 0;
  await decodeAll<MixedTextRecord>(t.mixed, 'mixed-text', (x) => {
    copies++;
    mixedIds.mark(x.id, 1, true);
    if (x.source === 'general') return;
    const flag = MIXED | (x.source === 'augmented' ? CONVERTED : KEPT_RAW);
    for (const id of x.textIds) ids.markIfKnown(id, flag);
  });
  for (const stage of STAGES) {
    const dlq = `${stageGroup(t, stage)}.dlq`;
    await scanToEnd(kafka, dlq, (messages) => {
      for (const m of messages) {
        const key = m.key?.toString() ?? '';
        if (!key.startsWith(prefix)) continue;
        const noOutput = m.headers?.[DLQ_HEADERS.outputs]?.toString() !== 'emitted';
        ids.markIfKnown(key.slice(prefix.length), DEAD | (noOutput ? DEAD_NO_OUTPUT : 0));
      }
    }, undefined, progress(dlq));
  }
  await decodeAll<MetricEventBatchRecord>(t.metrics, 'metric-event-batch', (b) => {
    for (const e of b.events) if (e.kind === 'synthesis' && e.runId === runId) ids.markIfKnown(e.recordId, METRIC);
  });

  // ClickHouse: one row per metric event id after FINAL; streamed, so a large run is not held as one response.
  let extraRows = 0;
  const rs = await o.clickhouse.query({
    query: `SELECT record_id, count() AS c FROM synthesis_metrics FINAL WHERE run_id = ${sqlString(runId)} GROUP BY record_id`,
    format: 'JSONEachRow',
  });
  for await (const rows of rs.stream()) {
    for (const row of rows as { json<T>(): T }[]) {
      const { record_id: id, c } = row.json<{ record_id: string; c: string | number }>();
      if (!ids.markIfKnown(id, ROW) || Number(c) > 1) extraRows += ids.flags(id) ? Number(c) - 1 : Number(c);
      if (Number(c) > 1) ids.markIfKnown(id, EXTRA_ROW);
    }
  }

  const count = (test: (f: number) => boolean) => ids.tally((f) => (f & RAW) !== 0 && test(f));
  const accountedFlags = CONVERTED | KEPT_RAW | DEAD;
  const isLost = (f: number) => (f & accountedFlags) === 0;
  const expectsMetric = (f: number) => (f & CONVERT) !== 0 && (f & DEAD_NO_OUTPUT) === 0;
  const texts = count(() => true);
  const lost = count(isLost);
  const duplicated = mixedIds.tally((_, c) => c > 1);
  const report: AuditReport = {
    runId,
    texts,
    ingestedTwice: count((f) => (f & RAW_TWICE) !== 0),
    converted: count((f) => (f & CONVERTED) !== 0),
    raw: count((f) => (f & CONVERTED) === 0 && (f & KEPT_RAW) !== 0),
    deadLettered: count((f) => (f & DEAD) !== 0),
    accounted: texts - lost,
    lost,
    lostIds: lost > 0 ? await rawIdsWhere(o, ids, isLost, sample) : [],
    mixed: {
      records: mixedIds.size,
      copies,
      duplicated,
      duplicatedIds: duplicated > 0 ? await duplicatedMixedIds(o, mixedIds, sample) : [],
      domainTexts: count((f) => (f & MIXED) !== 0),
      missingFromMix: count((f) => (f & (CONVERTED | KEPT_RAW)) !== 0 && (f & EMPTY_OUTPUT) === 0 && (f & MIXED) === 0),
    },
    metrics: {
      expected: count(expectsMetric),
      events: count((f) => (f & METRIC) !== 0),
      missingEvents: count((f) => expectsMetric(f) && (f & METRIC) === 0),
      clickhouseRows: count((f) => (f & ROW) !== 0),
      missingRows: count((f) => (f & METRIC) !== 0 && (f & ROW) === 0),
      extraRows,
    },
    ok: false,
    seconds: 0,
  };
  report.ok = report.lost === 0 && report.mixed.missingFromMix === 0 && report.metrics.missingEvents === 0 && report.metrics.missingRows === 0;
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** The first ids, in raw-topic order, whose flags pass the test. */
async function rawIdsWhere(o: AuditOptions, ids: IdFlags, test: (f: number) => boolean, limit: number): Promise<string[]> {
  const out: string[] = [];
  const schema = loadSchema('raw-text');
  await scanToEnd(o.kafka, o.topics.raw, async (messages) => {
    if (out.length >= limit) return;
    const mine = messages.filter((m) => runOfKey(m.key?.toString()) === o.runId);
    await o.serde.prefetch(mine.map((m) => m.value));
    for (const m of mine) {
      const id = (o.serde.decode(m.value, schema) as RawTextRecord).id;
      if (out.length < limit && test(ids.flags(id)) && !out.includes(id)) out.push(id);
    }
  });
  return out;
}

async function duplicatedMixedIds(o: AuditOptions, mixed: IdFlags, limit: number): Promise<string[]> {
  const out: string[] = [];
  const prefix = `${o.runId}/`;
  await scanToEnd(o.kafka, o.topics.mixed, (messages) => {
    for (const m of messages) {
      const key = m.key?.toString() ?? '';
      if (!key.startsWith(prefix)) continue;
      const id = key.slice(prefix.length);
      if (out.length < limit && mixed.count(id) > 1 && !out.includes(id)) out.push(id);
    }
  });
  return out;
}
