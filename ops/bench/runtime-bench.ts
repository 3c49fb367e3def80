import { randomUUID } from 'node:crypto';
import { Partitioners, type Kafka } from 'kafkajs';
import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { ensureTopics } from '../../processors/runtime/topics.ts';
import { median, round } from './stats.ts';
import { probeSide } from './side-probe.ts';
import { rateOverOutput, waitForRecords } from './bench-topics.ts';

export interface RuntimeBenchResult {
  bench: 'runtime';
  records: number;
  recordBytes: number;
  runs: number;
  runtimeRecordsPerSec: number;
  bareRecordsPerSec: number;
  ratio: number;
  runtimeRuns: number[];
  bareRuns: number[];
}

/** The baseline: a plain kafkajs consume → produce → commit loop over raw bytes, batch by batch. */
async function bareLoop(kafka: Kafka, input: string, output: string, n: number): Promise<void> {
  const group = `bench-bare-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId: group, maxBytesPerPartition: 4 * 1024 * 1024 });
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: input, fromBeginning: true });
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (let i = 0; i < batch.messages.length; i += 500) {
        const chunk = batch.messages.slice(i, i + 500);
        await producer.send({ topic: output, acks: -1, messages: chunk.map((m) => ({ key: m.key, value: m.value })) });
        const last = chunk[chunk.length - 1]!.offset;
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
        resolveOffset(last);
        await heartbeat();
        seen += chunk.length;
      }
      if (seen >= n) done();
    },
  });
  await finished;
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
}

export async function runtimeBench(cfg: RuntimeConfig, logger: Logger, opts: { records: number; runs: number; recordBytes: number; log: (l: string) => void }): Promise<RuntimeBenchResult> {
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: 'ipt-bench', logger });
  const id = randomUUID().slice(0, 8);
  const input = `bench.runtime.in.${id}`;
  const admin = kafka.admin();
  await admin.connect();
  const outputs = Array.from({ length: opts.runs }, (_, r) => [`bench.runtime.out.${id}.${r}`, `bench.bare.out.${id}.${r}`] as const);
  await ensureTopics(admin, [{ topic: input, partitions: 1 }, ...outputs.flat().map((topic) => ({ topic, partitions: 1 }))]);
  const serde = new AvroSerde(cfg.registryUrl);
  await serde.registerValueSchema(input, 'raw-text');
  opts.log(`bench runtime: producing ${opts.records} records of ~${opts.recordBytes} B`);
  await produceAll(kafka, input, rawTextMessages(serde, input, sampleTexts(opts.records, { runId: id, bytes: opts.recordBytes })));
  const runtimeRuns: number[] = [];
  const bareRuns: number[] = [];
  for (let r = 0; r < opts.runs; r++) {
    const [runtimeOut, bareOut] = outputs[r]!;
    // Alternate which side goes first so that broker warm-up favours neither.
    const sides = r % 2 === 0 ? (['bare', 'runtime'] as const) : (['runtime', 'bare'] as const);
    for (const side of sides) {
      const probed = await probeSide(`${side}-${r + 1}`, opts.log);
      if (side === 'bare') {
        await bareLoop(kafka, input, bareOut, opts.records);
        await probed();
        bareRuns.push(await rateOverOutput(kafka, bareOut, opts.records));
      } else {
        const proc = await startProcessor(identityProcessor({ name: `bench-runtime-${id}-${r}`, input, output: runtimeOut }), cfg, { logger, kafka });
        // Read the timestamps only once the output is complete, as on the bare side: a reader running alongside
        // would take CPU from the processor under test.
        await waitForRecords(admin, runtimeOut, opts.records);
        await probed();
        await proc.stop();
        runtimeRuns.push(await rateOverOutput(kafka, runtimeOut, opts.records));
      }
    }
    opts.log(`bench runtime: run ${r + 1}/${opts.runs}: runtime ${Math.round(runtimeRuns[r]!)} rec/s, bare ${Math.round(bareRuns[r]!)} rec/s`);
  }
  // The benchmark's topics are large; drop them so repeated runs do not fill the disk.
  await admin.deleteTopics({ topics: [input, ...outputs.flat()] }).catch(() => undefined);
  await admin.disconnect();
  const rt = median(runtimeRuns);
  const bare = median(bareRuns);
  return { bench: 'runtime', records: opts.records, recordBytes: opts.recordBytes, runs: opts.runs, runtimeRecordsPerSec: Math.round(rt), bareRecordsPerSec: Math.round(bare), ratio: round(rt / bare), runtimeRuns: runtimeRuns.map(Math.round), bareRuns: bareRuns.map(Math.round) };
}
