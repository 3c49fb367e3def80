import { inject } from 'vitest';
import tokenizers from '@anush008/tokenizers';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { produceAll, readTopic } from '../../processors/runtime/topic-io.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { SMALL_TOKENIZER } from '../../ops/stack/models.ts';
import { startTrainerSink, trainerSinkTopics, type TrainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import type { TokenBatchRecord } from '../../trainers/sink/trainer-sink-processor.ts';
import { createTopics, logger, testConfig, testKafka } from './helpers.ts';

/** Mixed training records and the token batches the trainer sink makes of them, for the sink's and the shards' tests. */

export async function mixedRecords(runId: string, n: number): Promise<MixedTextRecord[]> {
  return sampleTexts(n, { runId, bytes: 300 }).map((t, i) => ({ id: t.id, runId, source: i % 3 === 0 ? 'general' : i % 3 === 1 ? 'augmented' : 'raw', sourceId: t.id, text: t.text, tokens: 0, mixIndex: i, round: 0, textIds: i % 3 === 0 ? [] : [t.id], pairs: 0 }));
}

export async function seedMixed(prefix: string, runId: string, n: number, produce: (r: MixedTextRecord, i: number) => boolean = () => true): Promise<{ records: MixedTextRecord[]; produceRest: () => Promise<void> }> {
  const topics = trainerSinkTopics(prefix);
  const kafka = testKafka();
  await createTopics(kafka, [topics.input], 1);
  const serde = new AvroSerde(inject('stack').registryUrl);
  await serde.registerValueSchema(topics.input, 'mixed-text');
  const records = await mixedRecords(runId, n);
  const send = (rs: MixedTextRecord[]) => produceAll(kafka, topics.input, rs.map((r) => ({ key: `${runId}/${r.id}`, value: serde.encode(topics.input, loadSchema('mixed-text'), r) })));
  await send(records.filter(produce));
  return { records, produceRest: () => send(records.filter((r, i) => !produce(r, i))) };
}

export async function readBatches(topic: string, count: number): Promise<(TokenBatchRecord & { partition: number; offset: string })[]> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  const r = await readTopic(testKafka(), topic, { count, timeoutMs: 60_000, settleMs: 1000 });
  await serde.prefetch(r.messages.map((m) => m.value));
  return r.messages.map((m) => ({ ...(serde.decode(m.value, loadSchema('token-batch')) as TokenBatchRecord), partition: m.partition, offset: m.offset }));
}


/** How many whole batches the sink makes of these texts (each text's ids and the separator, packed in seqLen + 1 rows). */
export async function batchesOf(texts: readonly string[], seqLen: number, batchSize: number): Promise<number> {
  const tok = tokenizers.Tokenizer.fromFile(inject('smallTokenizer'));
  let n = 0;
  for (const t of texts) n += (await tok.encode(t, null, { addSpecialTokens: false })).getLength() + 1;
  return Math.floor(Math.floor((n - 1) / seqLen) / batchSize);
}

/** 40 texts of a run packed by the sink (2 ranks, seq len 16, 2 rows a batch) into at least 12 batches; the topics. */
export async function packedRun(prefix: string, runId: string): Promise<TrainerSinkTopics> {
  await seedMixed(prefix, runId, 40);
  const topics = trainerSinkTopics(prefix);
  const opts = { name: `${prefix}.trainer-sink`, ...topics, tokenizerJson: inject('smallTokenizer'), eosToken: SMALL_TOKENIZER.eosToken, seqLen: 16, batchSize: 2, worldSize: 2 };
  const sink = await startTrainerSink(testConfig(), opts, { logger });
  await readBatches(topics.output, 12);
  await sink.stop();
  return topics;
}
