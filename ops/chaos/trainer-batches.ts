import type { Admin, Kafka } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runOfKey } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import { decodeTokenIds } from '../../trainers/sink/sequence-packer.ts';
import { loadTokenizer, type TokenBatchRecord } from '../../trainers/sink/trainer-sink-processor.ts';
import type { SinkShape } from './trainer-sink-process.ts';

/** Sums of a topic's end offsets and of a group's committed offsets, asked often on one admin connection. */
export class TopicEnds {
  private constructor(private readonly admin: Admin) {}

  static async connect(kafka: Kafka): Promise<TopicEnds> {
    const admin = kafka.admin();
    await admin.connect();
    return new TopicEnds(admin);
  }

  /** 0 for a topic that does not exist yet. */
  async end(topic: string): Promise<number> {
    try {
      return (await this.admin.fetchTopicOffsets(topic)).reduce((s, o) => s + Number(o.high), 0);
    } catch {
      return 0;
    }
  }

  /** The group's committed offsets on the topic, summed (-1 while it has committed none). */
  async committed(groupId: string, topic: string): Promise<number> {
    try {
      const [t] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
      const offsets = (t?.partitions ?? []).map((p) => Number(p.offset)).filter((o) => o >= 0);
      return offsets.length ? offsets.reduce((a, b) => a + b, 0) : -1;
    } catch {
      return -1;
    }
  }

  close(): Promise<void> {
    return this.admin.disconnect();
  }
}

/** What the sink should have written for a run: the packing of the committed mixed stream, worked out here again. */
export interface ExpectedPacking {
  /**
   * Mixed records of the run read (committed), each packed once in the topic's order. Copies a stage wrote twice
   * (at-least-once) are records of the stream too, and packed like the rest; with exactly-once there are none.
   */
  mixedRead: number;
  /** Distinct mixed records of the run (by id). */
  mixedRecords: number;
  /** Records whose mix index is below one before them in the topic (the fused stage numbers a chunk's texts as they finish). */
  mixOrderBreaks: number;
  /** When each mixed record of the run was written (the Kafka record's timestamp, ms). */
  mixedTimes: number[];
  /** The token stream: each packed record's ids, then the separator. */
  stream: number[];
  /** Tokens of the whole stream per source. */
  streamTokens: Record<string, number>;
  batches: number;
  /** New tokens per source in those batches: the first batches·batchSize·seqLen + 1 tokens of the stream. */
  batchTokens: Record<string, number>;
}

/**
 * Batches hold full sequences only (trainers/sink/sequence-packer.ts): T stream tokens give ⌊(T − 1)/L⌋ sequences,
 * ⌊that/B⌋ batches, and those batches count the stream's first batches·B·L + 1 tokens (sequence k is tokens
 * [k·L, k·L + L + 1); every token after the first is new in exactly one sequence). What is left over — fewer than
 * B·L tokens — waits in the sink for more input.
 */
export async function expectedPacking(kafka: Kafka, serde: AvroSerde, mixedTopic: string, runId: string, tokenizerJson: string, eosToken: string, shape: SinkShape): Promise<ExpectedPacking> {
  const { tok, eosId } = loadTokenizer(tokenizerJson, eosToken);
  const mixedSchema = loadSchema('mixed-text');
  const records: MixedTextRecord[] = [];
  const mixedTimes: number[] = [];
  await scanToEnd(kafka, mixedTopic, async (messages) => {
    const ours = messages.filter((m) => runOfKey(m.key?.toString() ?? '') === runId);
    await serde.prefetch(ours.map((m) => m.value));
    for (const m of ours) {
      records.push(serde.decode(m.value, mixedSchema) as MixedTextRecord);
      mixedTimes.push(Number(m.timestamp));
    }
  });
  const stream: number[] = [];
  const runs: [string, number][] = [];
  const seen = new Set<string>();
  let highest = -1;
  let mixOrderBreaks = 0;
  for (const r of records) {
    seen.add(r.id);
    if (r.mixIndex <= highest) mixOrderBreaks++;
    highest = Math.max(highest, r.mixIndex);
    const ids = (await tok.encode(r.text, null, { addSpecialTokens: false })).getIds();
    for (const id of ids) stream.push(id);
    stream.push(eosId);
    runs.push([r.source, ids.length + 1]);
  }
  const { seqLen: L, batchSize: B } = shape;
  const batches = stream.length > 0 ? Math.floor(Math.floor((stream.length - 1) / L) / B) : 0;
  const counted = batches > 0 ? batches * B * L + 1 : 0;
  const streamTokens: Record<string, number> = {};
  const batchTokens: Record<string, number> = {};
  let at = 0;
  for (const [source, n] of runs) {
    streamTokens[source] = (streamTokens[source] ?? 0) + n;
    const inBatches = Math.max(0, Math.min(n, counted - at));
    if (inBatches > 0) batchTokens[source] = (batchTokens[source] ?? 0) + inBatches;
    at += n;
  }
  return { mixedRead: records.length, mixedRecords: seen.size, mixOrderBreaks, mixedTimes, stream, streamTokens, batches, batchTokens };
}

export type ReadBatch = TokenBatchRecord & { partition: number };

/** The run's committed token batches (read_committed: an aborted transaction of a killed sink never shows). */
export async function readBatches(kafka: Kafka, serde: AvroSerde, tokenTopic: string, runId: string): Promise<ReadBatch[]> {
  const schema = loadSchema('token-batch');
  const out: ReadBatch[] = [];
  await scanToEnd(kafka, tokenTopic, async (messages, partition) => {
    const ours = messages.filter((m) => runOfKey(m.key?.toString() ?? '') === runId);
    await serde.prefetch(ours.map((m) => m.value));
    for (const m of ours) out.push({ ...(serde.decode(m.value, schema) as TokenBatchRecord), partition });
  });
  return out;
}

/**
 * Reads the batches again until the sink has written as many as expected, or until none came for idleMs: a sink that
 * stalls (or lost a batch) ends the wait, and the check below says what is missing.
 */
export async function awaitBatches(kafka: Kafka, serde: AvroSerde, tokenTopic: string, runId: string, expected: number, idleMs = 30_000): Promise<ReadBatch[]> {
  let batches = await readBatches(kafka, serde, tokenTopic, runId);
  let grewAt = Date.now();
  while (batches.length < expected && Date.now() - grewAt < idleMs) {
    await sleep(1000);
    const now = await readBatches(kafka, serde, tokenTopic, runId);
    if (now.length > batches.length) grewAt = Date.now();
    batches = now;
  }
  return batches;
}

export interface BatchCheck {
  /** Committed batches of the run. */
  batches: number;
  batchesExpected: number;
  /** Global steps in 0..batchesExpected − 1 with no batch. */
  stepGaps: number;
  /** Global steps with more than one batch (or past the expected range). */
  stepDuplicates: number;
  /** Batches in the wrong partition, or whose rank or step does not follow from the global step. */
  misplaced: number;
  /** Batches whose sequences are not the stream's tokens [k·L, k·L + L + 1). */
  contentMismatches: number;
  /** New tokens per source, summed over the batches. */
  tokens: Record<string, number>;
  tokensExpected: Record<string, number>;
  /** Tokens of the whole packed stream per source (each mixed record's tokens and its separator, once). */
  streamTokens: Record<string, number>;
  ok: boolean;
}

/** The batches against the packing: global steps 0..N − 1 once each, in their rank's partition, with the stream's tokens. */
export function checkBatches(batches: ReadBatch[], want: ExpectedPacking, shape: SinkShape): BatchCheck {
  const { seqLen: L, batchSize: B, worldSize: W } = shape;
  const seen = new Map<number, number>();
  const tokens: Record<string, number> = {};
  let misplaced = 0;
  let contentMismatches = 0;
  for (const b of batches) {
    const g = Number(b.globalStep);
    seen.set(g, (seen.get(g) ?? 0) + 1);
    if (b.partition !== g % W || b.rank !== g % W || Number(b.step) !== Math.floor(g / W) || b.seqLen !== L || b.batchSize !== B) misplaced++;
    for (const s of b.sources) tokens[s.source] = (tokens[s.source] ?? 0) + Number(s.tokens);
    const ids = decodeTokenIds(b.tokens, b.dtype);
    let same = ids.length === B * (L + 1);
    for (let row = 0; same && row < B; row++) {
      const k = g * B + row;
      for (let j = 0; same && j <= L; j++) same = ids[row * (L + 1) + j] === want.stream[k * L + j];
    }
    if (!same) contentMismatches++;
  }
  let stepGaps = 0;
  for (let g = 0; g < want.batches; g++) if (!seen.has(g)) stepGaps++;
  let stepDuplicates = 0;
  for (const [g, n] of seen) stepDuplicates += g >= want.batches ? n : n - 1;
  const sources = new Set([...Object.keys(tokens), ...Object.keys(want.batchTokens)]);
  const tokensMatch = [...sources].every((s) => (tokens[s] ?? 0) === (want.batchTokens[s] ?? 0));
  return {
    batches: batches.length,
    batchesExpected: want.batches,
    stepGaps,
    stepDuplicates,
    misplaced,
    contentMismatches,
    tokens,
    tokensExpected: want.batchTokens,
    streamTokens: want.streamTokens,
    ok: batches.length === want.batches && stepGaps === 0 && stepDuplicates === 0 && misplaced === 0 && contentMismatches === 0 && tokensMatch,
  };
}
