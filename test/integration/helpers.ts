import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { createLogger } from '../../processors/runtime/logger.ts';
import { runtimeConfig, type RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { ensureTopics } from '../../processors/runtime/topics.ts';
import { endpointsEnv } from '../../ops/stack/locate.ts';

export const logger = createLogger('test', process.env.IPT_LOG_LEVEL ?? 'error');

export function stackEnv(): Record<string, string> {
  return endpointsEnv(inject('stack'));
}

export function testConfig(overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return runtimeConfig({ ...process.env, ...stackEnv() }, overrides);
}

export function testKafka(): Kafka {
  return createKafka({ brokers: inject('stack').brokers, clientId: 'ipt-test', logger });
}

export const uniq = (prefix: string) => `${prefix}.${randomUUID().slice(0, 8)}`;

export async function createTopics(kafka: Kafka, topics: string[], partitions = 1): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topics.map((topic) => ({ topic, partitions })));
  await admin.disconnect();
}

export async function serdeFor(topics: string[], schema = 'raw-text'): Promise<AvroSerde> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  for (const t of topics) await serde.registerValueSchema(t, schema);
  return serde;
}

/** Total records in a topic (sum of high watermarks; exact for topics written without transactions). */
export async function topicSize(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return offsets.reduce((s, o) => s + Number(o.high), 0);
}

/** Runs `ipt <args>` as its own OS process (node --import tsx, one pid, so SIGKILL hits the processor itself). */
export function spawnIpt(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', ...args], {
    env: { ...process.env, ...stackEnv(), IPT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
}
