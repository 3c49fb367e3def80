import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import { readTopic } from '../../processors/runtime/topic-io.ts';

/** Waits until a topic holds n records (sum of high watermarks), polling the broker, not reading. */
export async function waitForRecords(admin: Admin, topic: string, n: number, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const offsets = await admin.fetchTopicOffsets(topic);
    if (offsets.reduce((s, o) => s + Number(o.high), 0) >= n) return;
    await sleep(200);
  }
  throw new Error(`bench: ${topic} did not reach ${n} records`);
}

/** The create timestamps (ms) of a topic's first n records, read once the output is complete. */
export async function recordTimestamps(kafka: Kafka, topic: string, n: number): Promise<number[]> {
  const got = await readTopic(kafka, topic, { count: n, timeoutMs: 600_000 });
  if (got.messages.length < n) throw new Error(`bench: ${topic} has ${got.messages.length} of ${n} records`);
  return got.messages.map((m) => Number(m.timestamp));
}

/**
 * Units per second over the span of a topic's record timestamps (last − first). Measuring on output timestamps
 * leaves consumer-group joins and reader start-up out of both sides of a comparison alike.
 */
export async function rateOverOutput(kafka: Kafka, topic: string, records: number, units = records): Promise<number> {
  const ts = await recordTimestamps(kafka, topic, records);
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of ts) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return units / Math.max((hi - lo) / 1000, 0.001);
}
