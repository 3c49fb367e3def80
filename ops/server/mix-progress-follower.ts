import type { Kafka } from 'kafkajs';
import type { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import type { PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixerStateRecord } from '../../processors/pipeline/records.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';

export type MixProgressRow = {
  run_id: string;
  mix_index: number;
  time_ms: number;
  time: number;
  domain_tokens: number;
  general_tokens: number;
};

/** A mixer changelog record as a mix_progress row; none for records written before they carried their time. */
export function mixProgressRow(s: MixerStateRecord): MixProgressRow | undefined {
  if (s.updatedAt <= 0) return undefined;
  return { run_id: s.runId, mix_index: s.mixIndex, time_ms: s.updatedAt, time: Math.floor(s.updatedAt / 1000), domain_tokens: s.emittedTokens[0] ?? 0, general_tokens: s.emittedTokens[1] ?? 0 };
}

/**
 * Follows the mixer's changelog (one long-lived consumer, from the topic's start) into ClickHouse's mix_progress, for
 * the dashboard's mix share over time. A row is keyed by run and mix index and carries the time the mixer wrote it,
 * so reading the changelog again (a restarted server) replaces rows with themselves. Compaction keeps only each run's
 * latest counts in the topic; the history lives in ClickHouse from the moment a server follows the topic.
 */
export async function startMixProgressFollower(kafka: Kafka, serde: AvroSerde, t: PipelineTopics, inserter: BatchInserter, onError: (e: Error) => void): Promise<() => Promise<void>> {
  // Rows held past ClickHouse's outage budget fail one by one: one warning a minute says so, not one per row.
  let warnedAt = -Infinity;
  const failed = (e: Error) => {
    if (Date.now() - warnedAt < 60_000) return;
    warnedAt = Date.now();
    onError(e);
  };
  const table = new TopicTable<MixerStateRecord>(kafka, serde, t.mixerState, 'mixer-state', (s) => {
    const row = mixProgressRow(s);
    if (row) void inserter.add('mix_progress', row).catch(failed);
    return undefined; // nothing kept in memory: the rows are the state
  });
  table.onFailure = onError;
  await table.start();
  return () => table.stop();
}
