import type { Kafka, KafkaMessage } from 'kafkajs';
import type { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import { runOfKey, stageGroup, STAGES, type PipelineTopics, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { topicEnds } from '../../processors/runtime/topic-ends.ts';
import { scanSegments } from '../../processors/runtime/topic-scan.ts';
import { startPeriodic } from './periodic.ts';

export type DeadLetterRow = {
  dlq_topic: string;
  dlq_partition: number;
  dlq_offset: number;
  time_ms: number;
  time: number;
  run_id: string;
  stage: string;
  failure: string;
  reason: string;
  record_key: string;
  source_topic: string;
};

const header = (m: KafkaMessage, name: string): string => {
  const v = m.headers?.[name];
  return v === undefined ? '' : String(Array.isArray(v) ? v[0] : v);
};

/** A dead letter's row: where it sits, its record's key and run, and what the runtime's headers say of its failure. */
export function deadLetterRow(stage: StageName, topic: string, partition: number, m: KafkaMessage): DeadLetterRow {
  const key = m.key?.toString() ?? '';
  const at = Date.parse(header(m, DLQ_HEADERS.time));
  const time = Number.isFinite(at) ? at : Number(m.timestamp);
  return {
    dlq_topic: topic,
    dlq_partition: partition,
    dlq_offset: Number(m.offset),
    time_ms: time,
    time: Math.floor(time / 1000),
    run_id: runOfKey(key),
    stage,
    failure: header(m, DLQ_HEADERS.stage),
    reason: header(m, DLQ_HEADERS.reason).slice(0, 1000),
    record_key: key,
    source_topic: header(m, DLQ_HEADERS.topic),
  };
}

/**
 * Reads every stage's dead-letter topic as it grows (from its start when the server starts) into ClickHouse's
 * dead_letters table, every intervalMs, for the dashboard's dead-letter panels. Rows are idempotent on their place.
 */
export function startDeadLetterSampler(kafka: Kafka, t: PipelineTopics, inserter: BatchInserter, intervalMs: number, onError: (e: Error) => void): () => void {
  const positions = new Map<string, bigint>();
  return startPeriodic(
    async () => {
      const admin = kafka.admin();
      await admin.connect();
      let existing: Set<string>;
      try {
        existing = new Set(await admin.listTopics());
      } finally {
        await admin.disconnect();
      }
      for (const stage of STAGES) {
        const topic = `${stageGroup(t, stage)}.dlq`;
        if (!existing.has(topic)) continue;
        const segments = (await topicEnds(kafka, topic)).map((e) => ({ partition: e.partition, from: positions.get(`${topic}/${e.partition}`) ?? BigInt(e.low), to: BigInt(e.high) }));
        await scanSegments(kafka, topic, segments, (messages, partition) => {
          for (const m of messages) void inserter.add('dead_letters', deadLetterRow(stage, topic, partition, m)).catch(onError);
        }, { what: 'dead-letters' });
        for (const s of segments) positions.set(`${topic}/${s.partition}`, s.to);
      }
    },
    intervalMs,
    onError,
  );
}
