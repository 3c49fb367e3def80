import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { topicEnds } from '../../processors/runtime/topic-ends.ts';
import { scanSegments } from '../../processors/runtime/topic-scan.ts';
import type { TokenBatchRecord } from '../sink/trainer-sink-processor.ts';
import { lockShardDir, resumePoint, type ShardFormat, type ShardManifest } from './shard-manifest.ts';
import { ShardWriter } from './shard-writer.ts';
import { StepMerger } from './step-merger.ts';

export interface ExportShardsOptions {
  kafka: Kafka;
  serde: AvroSerde;
  /** The token topic (`<prefix>.train.tokens`). */
  topic: string;
  runId: string;
  /** The run's folder: shard-NNNNN.{bin,idx,parquet,json}. */
  dir: string;
  formats: readonly ShardFormat[];
  /** A shard is closed after the batch that takes it to this many bytes of token ids. */
  shardBytes: number;
  /** Keep reading as the sink writes; without it the export stops at the topic's end as of each read. */
  follow?: { pollMs: number; idleFlushMs: number; signal: AbortSignal };
  onShard?: (m: ShardManifest) => void;
  /** After each fetch: the records read and the records to read in this pass (all runs', as far as the topic's end). */
  onProgress?: (read: number, toRead: number) => void;
}

export interface ExportSummary {
  runId: string;
  /** Where this export began: the shards and steps already written before it. */
  resumedAt: { shard: number; step: number };
  shards: ShardManifest[];
  batches: number;
  sequences: number;
  tokens: number;
  /** Steps read again (an at-least-once sink re-sent them after a restart), dropped once checked equal. */
  duplicates: number;
  /** Records of other runs in the topic, passed over. */
  otherRuns: number;
  /** Steps read but left for the next export: a step before them is not in the topic yet. */
  held: number;
  nextStep: number;
}

const TOKEN_BATCH = () => loadSchema('token-batch');

/**
 * Writes one run's token batches, in global-step order, to shards for trainers that read files: Megatron-LM's
 * indexed dataset and/or Parquet (docs/trainer.md, "Shards"). It continues after the run's last whole shard (its
 * manifest names where reading goes on), so a stopped or crashed export neither loses nor repeats a batch. Files
 * are not part of Kafka transactions, which is why the position lives in the manifests and not in a consumer group.
 */
export async function exportShards(o: ExportShardsOptions): Promise<ExportSummary> {
  const release = lockShardDir(o.dir);
  try {
    return await exportLocked(o);
  } finally {
    release();
  }
}

/** A pass over the topic may be long (a large backlog); it is bounded only so that a stalled read still ends. */
const PASS_TIMEOUT_MS = 24 * 3600_000;

async function exportLocked(o: ExportShardsOptions): Promise<ExportSummary> {
  const resume = resumePoint(o.dir);
  // The folder continues one run of one topic: another's offsets would skip or mix batches.
  if (resume.last && (resume.last.topic !== o.topic || resume.last.runId !== o.runId)) {
    throw new Error(`${o.dir}: its shards hold run ${resume.last.runId} of ${resume.last.topic}, not run ${o.runId} of ${o.topic}: use another --out`);
  }
  const positions = new Map(resume.positions);
  const written = new Map(resume.positions);
  const merger = new StepMerger(resume.nextStep);
  const sum: ExportSummary = { runId: o.runId, resumedAt: { shard: resume.shard, step: resume.nextStep }, shards: [], batches: 0, sequences: 0, tokens: 0, duplicates: 0, otherRuns: 0, held: 0, nextStep: resume.nextStep };
  let shard = resume.shard;
  let writer: ShardWriter | undefined;
  const close = async () => {
    if (!writer || writer.empty) return;
    const m = await writer.finish();
    writer = undefined;
    shard++;
    sum.shards.push(m);
    o.onShard?.(m);
  };
  const keyPrefix = `${o.runId}/`;
  let lastNewAt = Date.now();
  try {
    for (;;) {
      const ends = await topicEnds(o.kafka, o.topic);
      const segments = ends.map((e) => {
        const low = BigInt(e.low);
        const at = positions.get(e.partition);
        // Records deleted by retention before they were exported: the shards would have a hole.
        if (at !== undefined && at < low) throw new Error(`${o.topic} partition ${e.partition}: the export goes on at offset ${at}, but the topic now starts at ${low} (retention deleted batches not yet exported)`);
        return { partition: e.partition, from: at ?? low, to: BigInt(e.high) };
      });
      let fresh = 0;
      let read = 0;
      const toRead = segments.reduce((n, x) => n + Number(x.to - x.from), 0);
      await scanSegments(
        o.kafka,
        o.topic,
        segments,
        async (messages, partition) => {
          const ours = messages.filter((m) => (m.key ? m.key.toString().startsWith(keyPrefix) : true));
          await o.serde.prefetch(ours.map((m) => m.value));
          for (const m of messages) {
            positions.set(partition, BigInt(m.offset) + 1n);
            if (m.key && !m.key.toString().startsWith(keyPrefix)) {
              sum.otherRuns++;
              continue;
            }
            const batch = o.serde.decode(m.value, TOKEN_BATCH()) as TokenBatchRecord;
            if (batch.runId !== o.runId) {
              sum.otherRuns++;
              continue;
            }
            merger.add({ batch, partition, offset: BigInt(m.offset) });
            fresh++;
          }
          for (const b of merger.drain()) {
            writer ??= new ShardWriter(o.dir, shard, o.formats, o.topic, written);
            await writer.add(b);
            sum.batches++;
            sum.sequences += b.batch.batchSize;
            sum.tokens += b.batch.batchSize * (b.batch.seqLen + 1);
            if (writer.tokenBytes >= o.shardBytes) await close();
          }
          read += messages.length;
          o.onProgress?.(read, toRead);
        },
        { what: 'shards', timeoutMs: PASS_TIMEOUT_MS },
      );
      if (fresh > 0) lastNewAt = Date.now();
      if (!o.follow || o.follow.signal.aborted) break;
      if (Date.now() - lastNewAt >= o.follow.idleFlushMs) await close();
      await sleep(o.follow.pollMs, undefined, { signal: o.follow.signal }).catch(() => undefined);
      if (o.follow.signal.aborted) break;
    }
    // The tail: the batches in order so far, as a last (smaller) shard; the next export starts after it.
    await close();
  } catch (err) {
    writer?.discard();
    throw err;
  }
  sum.duplicates = merger.duplicates;
  sum.held = merger.held;
  sum.nextStep = merger.next;
  return sum;
}
