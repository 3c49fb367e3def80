import type { Kafka } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';

/** The records of one run in a topic, read to the topic's current end (the latest per key). */
export async function readRun<T extends { runId: string }>(kafka: Kafka, serde: AvroSerde, topic: string, schema: string, runId: string, keyOf: (v: T) => string): Promise<Map<string, T>> {
  const table = new TopicTable<T>(kafka, serde, topic, schema, (v) => (v.runId === runId ? keyOf(v) : undefined));
  await table.start();
  try {
    await table.ready();
    return new Map(table.entries());
  } finally {
    await table.stop();
  }
}
