import { randomUUID } from 'node:crypto';
import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { produceAll, readTopic } from '../../processors/runtime/topic-io.ts';
import { ensureTopics } from '../../processors/runtime/topics.ts';
import { locateStack, endpointsEnv } from '../stack/locate.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';

/** Brings the stack up, pushes sample texts through a processor on Kafka and checks every id arrived once. */
export async function smokeCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('smoke', argv, FLAGS.smoke);
  const n = values.records;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const ep = await locateStack(process.env, log);
  const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
  const logger = createLogger('ipt-smoke', logLevel('warn'));
  const runId = randomUUID().slice(0, 8);
  const input = `smoke.raw.${runId}`;
  const output = `smoke.out.${runId}`;
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: 'ipt-smoke', logger });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: input, partitions: 3 }]);
  await admin.disconnect();
  const serde = new AvroSerde(cfg.registryUrl);
  await serde.registerValueSchema(input, 'raw-text');
  const texts = sampleTexts(n, { runId });
  const started = Date.now();
  await produceAll(kafka, input, rawTextMessages(serde, input, texts));
  const proc = await startProcessor(identityProcessor({ name: `smoke-${runId}`, input, output, partitions: 3 }), cfg, { logger });
  const got = await readTopic(kafka, output, { count: n, timeoutMs: 120_000, settleMs: 500 });
  await proc.stop();
  const ids = new Set(got.messages.map((m) => m.key?.toString()));
  const missing = texts.filter((t) => !ids.has(t.id)).length;
  const summary = { stack: ep.source, runId, ingested: n, delivered: got.messages.length, missing, duplicates: got.messages.length - ids.size, seconds: (Date.now() - started) / 1000 };
  console.log(values.json ? JSON.stringify(summary) : `smoke: ${summary.delivered}/${n} delivered, ${missing} missing, ${summary.duplicates} duplicates in ${summary.seconds}s (stack: ${ep.source})`);
  return missing === 0 && summary.duplicates === 0 ? 0 : 1;
}
