import type { Kafka } from 'kafkajs';
import type { Gauge } from 'prom-client';
import { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import { stageGroup, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { consumersOf } from '../jobs/replay.ts';
import { consumedTopics } from '../../processors/pipeline/topology.ts';
import { startPeriodic } from './periodic.ts';

export interface LagSample {
  stage: string;
  topic: string;
  lag: number;
}

/** Each stage's consumer lag: its topic's end offsets minus its group's committed offsets, summed over partitions. */
export async function sampleLag(kafka: Kafka, t: PipelineTopics): Promise<LagSample[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const out: LagSample[] = [];
    for (const topic of consumedTopics().map((k) => t[k])) {
      if (!existing.has(topic)) continue;
      const ends = await admin.fetchTopicOffsets(topic);
      for (const stage of consumersOf(t, topic)) {
        const [committed] = await admin.fetchOffsets({ groupId: stageGroup(t, stage), topics: [topic] });
        let lag = 0n;
        for (const e of ends) {
          const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1';
          const from = BigInt(c) < 0n ? BigInt(e.low) : BigInt(c);
          lag += BigInt(e.high) > from ? BigInt(e.high) - from : 0n;
        }
        out.push({ stage, topic, lag: Number(lag) });
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/** Samples lag every intervalMs into ClickHouse's consumer_lag table and a Prometheus gauge. */
export function startLagSampler(kafka: Kafka, t: PipelineTopics, inserter: BatchInserter, gauge: Gauge<'stage' | 'topic'>, intervalMs: number, onError: (e: Error) => void): () => void {
  return startPeriodic(
    async () => {
      const now = Date.now();
      for (const s of await sampleLag(kafka, t)) {
        gauge.set({ stage: s.stage, topic: s.topic }, s.lag);
        void inserter.add('consumer_lag', { time_ms: now, time: Math.floor(now / 1000), stage: s.stage, topic: s.topic, lag: s.lag }).catch(onError);
      }
    },
    intervalMs,
    onError,
  );
}
