import type { Logger } from '../../processors/runtime/logger.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { startProcessor, type RunningProcessor } from '../../processors/runtime/run-processor.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { describeMismatch, ensureTopics } from '../../processors/runtime/topics.ts';
import type { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { trainerSinkProcessor, type TrainerSinkOptions } from './trainer-sink-processor.ts';

export interface TrainerSinkTopics {
  input: string;
  output: string;
  stateTopic: string;
}

/** `<prefix>.train.mixed` → `<prefix>.train.tokens` (one partition per rank), state in `<prefix>.sink.state`. */
export function trainerSinkTopics(prefix: string): TrainerSinkTopics {
  return { input: `${prefix}.train.mixed`, output: `${prefix}.train.tokens`, stateTopic: `${prefix}.sink.state` };
}

/**
 * Creates the token topic with one partition per data-parallel rank (refusing one that exists with another count:
 * ranks would read the wrong batches) and the compacted state topic, then starts the sink processor.
 */
export async function startTrainerSink(cfg: RuntimeConfig, o: TrainerSinkOptions, deps: { logger: Logger; metrics?: ProcessorMetrics }): Promise<RunningProcessor & { vocabSize: number }> {
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: `${cfg.clientId}-sink`, logger: deps.logger });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const mismatches = await ensureTopics(admin, [
      { topic: o.input, partitions: 1, config: { 'retention.ms': '-1' } },
      { topic: o.output, partitions: o.worldSize, config: { 'retention.ms': '-1' } },
      { topic: o.stateTopic, partitions: 1, config: { 'cleanup.policy': 'compact' } },
    ]);
    for (const m of mismatches) deps.logger.warn({ topic: m.topic }, describeMismatch(m));
    const [meta] = (await admin.fetchTopicMetadata({ topics: [o.output] })).topics;
    if (meta && meta.partitions.length !== o.worldSize) throw new Error(`${o.output} has ${meta.partitions.length} partitions but the world size is ${o.worldSize}: use another topic (--prefix) or the same world size`);
  } finally {
    await admin.disconnect();
  }
  const sink = trainerSinkProcessor(kafka, new AvroSerde(cfg.registryUrl), o);
  await sink.start();
  const running = await startProcessor(sink.spec, cfg, { logger: deps.logger, metrics: deps.metrics, kafka });
  // Fields named, not spread: a spread would copy the failure getter's value at start-up.
  return {
    name: running.name,
    ready: () => running.ready(),
    done: running.done,
    get failure() {
      return running.failure;
    },
    vocabSize: sink.vocabSize,
    async stop() {
      await running.stop();
      await sink.stop();
    },
  };
}
