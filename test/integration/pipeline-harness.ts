import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { cannedPairs, RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { runPipeline, type PipelineRunOptions, type PipelineRunSummary } from '../../ops/jobs/pipeline-run.ts';
import { pipelineOptions, runSettings } from '../../ops/cli/pipeline-options.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { logger, stackEnv, testKafka } from './helpers.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import type { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { serve, type ServeOptions, type Served } from '../../ops/server/serve.ts';

export const tmp = () => mkdtempSync(join(tmpdir(), 'ipt-pipeline-'));

/** A JSONL corpus of n texts of varied length; returns its path and the texts by id. */
export function writeCorpus(dir: string, n: number, name = 'corpus.jsonl', prefix = 'doc'): { path: string; texts: { id: string; text: string }[] } {
  const texts = sampleTexts(n, { runId: '', bytes: 200, prefix }).map((t, i) => ({ id: t.id, text: t.text.slice(0, 120 + ((i * 37) % 80)) }));
  const path = join(dir, name);
  writeFileSync(path, texts.map((t) => JSON.stringify(t)).join('\n') + '\n');
  return { path, texts };
}

/** A recorded-response server that answers every context with made-up pairs (no model: protocol tests only). */
export async function cannedServer(recorded: Record<string, string> = {}): Promise<RecordedCompletionsServer> {
  const s = new RecordedCompletionsServer(recorded, undefined, cannedPairs);
  await s.start();
  return s;
}

/** Each test gets its own topics (prefix) and ClickHouse database, so runs never see each other. */
export function isolated() {
  const id = randomUUID().slice(0, 8);
  return { prefix: `it-${id}`, database: `ipt_it_${id}` };
}

export function envFor(iso: { database: string }): NodeJS.ProcessEnv {
  return { ...process.env, ...stackEnv(), IPT_CLICKHOUSE_DB: iso.database, IPT_CLICKHOUSE_URL: inject('stack').clickhouseUrl };
}

export async function runOnStack(
  iso: { prefix: string; database: string },
  input: string,
  flags: Record<string, string | boolean>,
  extra: Partial<PipelineRunOptions> = {},
  llmExtraBody?: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
  metrics?: ProcessorMetrics,
): Promise<PipelineRunSummary> {
  const values = { prefix: iso.prefix, 'length-estimate': 'words', partitions: '2', ...flags };
  const pipeline = { ...pipelineOptions('test', values, { ...envFor(iso), ...env }), metrics };
  if (llmExtraBody) pipeline.llm.extraBody = llmExtraBody;
  return runPipeline({
    input,
    settings: runSettings('test', values),
    pipeline,
    startStages: true,
    timeoutMs: 120_000,
    log: () => undefined,
    logger,
    ...extra,
  });
}

/** A run's domain pre-training texts in the mixed stream (either topology), one per id (a restarted stage may write one twice), sorted. */
export async function pretrainingTextsOf(prefix: string, runId: string): Promise<string[]> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  const r = await readTopic(testKafka(), pipelineTopics(prefix).mixed, { timeoutMs: 3000 });
  await serde.prefetch(r.messages.map((m) => m.value));
  const byId = new Map<string, string>();
  for (const m of r.messages) {
    const x = serde.decode(m.value, loadSchema('mixed-text')) as MixedTextRecord;
    if (x.runId === runId && x.source !== 'general') byId.set(x.id, x.text);
  }
  return [...byId.values()].sort();
}

/** `ipt serve` in this process on an isolated prefix and database, with the test's token and limits. */
export async function serveOnStack(
  iso: { prefix: string; database: string },
  o: { token: string; llmUrl?: string; withPipeline: boolean; limits: ServeOptions['limits']; lagIntervalMs?: number },
): Promise<Served> {
  const values = { prefix: iso.prefix, partitions: '2', 'length-estimate': 'words', ...(o.llmUrl ? { 'llm-url': o.llmUrl } : {}) };
  const { runId: _, ...runDefaults } = runSettings('test', values);
  return serve({
    port: 0,
    host: '127.0.0.1',
    token: o.token,
    pipeline: pipelineOptions('test', values, envFor(iso)),
    withPipeline: o.withPipeline,
    limits: o.limits,
    lagIntervalMs: o.lagIntervalMs ?? 60_000,
    runDefaults,
    logger,
  });
}
