import { randomUUID } from 'node:crypto';
import tokenizers from '@anush008/tokenizers';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { ensureTopics } from '../../processors/runtime/topics.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import { startTrainerSink, trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { median, round } from './stats.ts';
import { rateOverOutput, waitForRecords } from './bench-topics.ts';

export interface SinkBenchResult {
  bench: 'sink';
  texts: number;
  textBytes: number;
  tokens: number;
  runs: number;
  seqLen: number;
  batchSize: number;
  worldSize: number;
  sinkTokensPerSec: number;
  bareTokensPerSec: number;
  ratio: number;
  sinkRuns: number[];
  bareRuns: number[];
}

/**
 * Tokens per second of the trainer sink end to end (consume mixed texts, tokenize, pack, produce token batches), from
 * its first batch's timestamp to its last, vs the bare tokenizer's encode throughput on the same texts in the same
 * process (the same number of encodes in flight as the sink keeps).
 */
export async function sinkBench(
  cfg: RuntimeConfig,
  logger: Logger,
  opts: { texts: number; runs: number; textBytes: number; tokenizer: string; eosToken: string; seqLen: number; batchSize: number; worldSize: number; log: (l: string) => void },
): Promise<SinkBenchResult> {
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: 'ipt-bench', logger });
  const serde = new AvroSerde(cfg.registryUrl);
  const runId = `bench-${randomUUID().slice(0, 8)}`;
  const texts = sampleTexts(opts.texts, { runId, bytes: opts.textBytes });
  const records: MixedTextRecord[] = texts.map((t, i) => ({ id: t.id, runId, source: 'raw', sourceId: t.id, text: t.text, tokens: 0, mixIndex: i, round: 0, textIds: [t.id], pairs: 0 }));
  const tok = tokenizers.Tokenizer.fromFile(opts.tokenizer);
  let tokens = 0;
  for (const t of texts) tokens += (await tok.encode(t.text, null, { addSpecialTokens: false })).getLength() + 1;
  const admin = kafka.admin();
  await admin.connect();
  const created: string[] = [];
  const sinkRuns: number[] = [];
  const bareRuns: number[] = [];
  try {
    for (let r = 0; r < opts.runs; r++) {
      // Bare: encode every text, cfg.concurrency at a time, as the sink's handler calls do.
      const t0 = performance.now();
      for (let i = 0; i < texts.length; i += cfg.concurrency) {
        await Promise.all(texts.slice(i, i + cfg.concurrency).map((t) => tok.encode(t.text, null, { addSpecialTokens: false })));
      }
      bareRuns.push(tokens / ((performance.now() - t0) / 1000));

      const prefix = `bench-sink-${randomUUID().slice(0, 8)}`;
      const topics = trainerSinkTopics(prefix);
      created.push(topics.input, topics.output, topics.stateTopic);
      await ensureTopics(admin, [{ topic: topics.input, partitions: 1 }]);
      await serde.registerValueSchema(topics.input, 'mixed-text');
      await produceAll(kafka, topics.input, records.map((m) => ({ key: `${runId}/${m.id}`, value: serde.encode(topics.input, loadSchema('mixed-text'), m) })));
      const sink = await startTrainerSink(cfg, { name: `${prefix}.trainer-sink`, ...topics, tokenizerJson: opts.tokenizer, eosToken: opts.eosToken, seqLen: opts.seqLen, batchSize: opts.batchSize, worldSize: opts.worldSize }, { logger });
      const batches = Math.floor(Math.floor((tokens - 1) / opts.seqLen) / opts.batchSize);
      await waitForRecords(admin, topics.output, batches);
      await sink.stop();
      sinkRuns.push(await rateOverOutput(kafka, topics.output, batches, batches * opts.batchSize * opts.seqLen));
      opts.log(`bench sink: run ${r + 1}/${opts.runs}: sink ${Math.round(sinkRuns[r]!)} tokens/s, bare encode ${Math.round(bareRuns[r]!)} tokens/s`);
    }
  } finally {
    await admin.deleteTopics({ topics: created }).catch(() => undefined);
    await admin.disconnect();
  }
  const s = median(sinkRuns);
  const b = median(bareRuns);
  return {
    bench: 'sink',
    texts: opts.texts,
    textBytes: opts.textBytes,
    tokens,
    runs: opts.runs,
    seqLen: opts.seqLen,
    batchSize: opts.batchSize,
    worldSize: opts.worldSize,
    sinkTokensPerSec: Math.round(s),
    bareTokensPerSec: Math.round(b),
    ratio: round(s / b),
    sinkRuns: sinkRuns.map(Math.round),
    bareRuns: bareRuns.map(Math.round),
  };
}
