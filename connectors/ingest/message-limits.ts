import kafkajs, { type Admin } from 'kafkajs';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { recordKey } from '../../processors/pipeline/pipeline-topics.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import type { InputText } from './run-plan.ts';

// Not found by Node's named-export detection in kafkajs's CommonJS entry.
const { ConfigResourceTypes } = kafkajs;

/**
 * Bytes of one produce request at most. The broker refuses a partition's batch above its topic's max.message.bytes,
 * and a refused partition in a multi-partition request leaves the others written: requests stay well below the
 * limit (half of it, and never above this).
 */
export const REQUEST_BUDGET_BYTES = 8 << 20;
/** Framing around one record (length, attributes, timestamp and offset deltas, key and value lengths, no headers), generously. */
export const RECORD_OVERHEAD = 64;
/** A record batch's own header (61 bytes), with room to spare. */
export const BATCH_OVERHEAD = 128;
/** Kafka's default max.message.bytes, assumed when a topic's own cannot be read (a conservative choice). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
export const LIMITS_TTL_MS = 60_000;

/**
 * Each topic's max.message.bytes (the broker's message.max.bytes unless the topic overrides it); a topic whose
 * limit cannot be read (no describe permission) is left out, and callers assume Kafka's default for it.
 */
export async function messageLimits(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })),
    });
    for (const r of resources) {
      const v = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
      if (r.errorCode === 0 && Number.isInteger(v) && v > 0) out.set(r.resourceName, v);
    }
  } catch {
    // Not allowed to describe configs (ACLs): the default stands in, below which every broker takes a batch.
  }
  return out;
}

/**
 * Raw texts a topic with this limit cannot take, by index, each with the reason: checked before a run is planned,
 * so such a text is rejected by its line like any bad input instead of failing the run half-written.
 */
export function oversizedTexts(texts: readonly InputText[], runId: string, limit = DEFAULT_MAX_MESSAGE_BYTES): { index: number; reason: string }[] {
  const out: { index: number; reason: string }[] = [];
  texts.forEach((t, index) => {
    const size = nearLimit(t, runId, limit) ? rawRecordBytes(t, runId, texts.length) : 0;
    if (size > limit) out.push({ index, reason: oversizedReason(size, limit) });
  });
  return out;
}

/** Whether a text's record may be too large: only such a text is encoded, its UTF-8 bytes alone bound the record from below. */
export function nearLimit(t: InputText, runId: string, limit = DEFAULT_MAX_MESSAGE_BYTES): boolean {
  const lower = Buffer.byteLength(t.text) + 2 * Buffer.byteLength(t.id) + Buffer.byteLength(t.source) + 2 * Buffer.byteLength(runId);
  return lower + 4 * RECORD_OVERHEAD >= limit - BATCH_OVERHEAD;
}

/** A raw text's bytes in a request (framing included), encoded with `seq` as its place (its size depends on it a little). */
export function rawRecordBytes(t: InputText, runId: string, seq: number): number {
  const record: RawTextRecord = { id: t.id, runId, text: t.text, source: t.source, ingestedAt: Date.now(), seq, round: 0, convert: true };
  return 5 + loadSchema('raw-text').type.toBuffer(record).length + Buffer.byteLength(recordKey(runId, t.id)) + RECORD_OVERHEAD + BATCH_OVERHEAD;
}

export const oversizedReason = (size: number, limit: number) => `the text's record is about ${size} bytes; the raw-text topic takes at most ${limit} (max.message.bytes)`;
