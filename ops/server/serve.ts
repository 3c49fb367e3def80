import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import { f1ByDataset, lagOverTime, roundAggregates, runIds, throughput } from '../../connectors/clickhouse/run-queries.ts';
import { openRun, PipelineWriter, type RunSettings } from '../../connectors/ingest/run-ingest.ts';
import { validateIngestBatch, type IngestLimits } from '../../connectors/ingest/http-ingest.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';
import { isPreset, type RunConfig } from '../../processors/pipeline/run-config.ts';
import { ensurePipelineTopics, startPipeline, type PipelineOptions, type RunningPipeline } from '../../processors/pipeline/start-pipeline.ts';
import { STAGES, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { startLagSampler } from './lag-sampler.ts';
import { parseReplayFrom, replayTopic } from '../jobs/replay.ts';
import { startRounds } from '../jobs/rounds-start.ts';
import type { PipelineRunSummary } from '../jobs/pipeline-run.ts';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export interface ServeOptions {
  port: number;
  host: string;
  /** Bearer token for ingest and control routes. */
  token: string;
  pipeline: Omit<PipelineOptions, 'logger'>;
  /** Run the pipeline's stages in this process too. */
  withPipeline: boolean;
  limits: IngestLimits & { bodyBytes: number };
  lagIntervalMs: number;
  runDefaults: Omit<RunSettings, 'runId' | 'preset'>;
  logger: Logger;
}

export interface Served {
  app: FastifyInstance;
  url: string;
  pipeline?: RunningPipeline;
  close(): Promise<void>;
}

interface Job {
  id: string;
  kind: 'rounds';
  state: 'running' | 'done' | 'failed';
  runId: string;
  summary?: PipelineRunSummary;
  error?: string;
}

/**
 * The ops server: health and Prometheus metrics, HTTP ingest into open runs, round and replay control
 * (bearer-token protected), and the live dashboard fed by ClickHouse queries.
 */
export async function serve(opts: ServeOptions): Promise<Served> {
  const page = readFileSync(join(here, 'dashboard.html'), 'utf8');
  // Chart.js's UMD build, served from the installed package (the page loads nothing from elsewhere).
  const chartJs = readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const { runtime, clickhouse } = opts.pipeline;
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  await migrate(clickhouse.url, clickhouse.database);
  const kafka: Kafka = createKafka({ brokers: runtime.brokers, clientId: `${runtime.clientId}-serve`, logger: opts.logger });
  const serde = new AvroSerde(runtime.registryUrl);
  const writer = new PipelineWriter(kafka, serde, topics);
  await writer.start();
  const runs = new TopicTable<RunConfig>(kafka, serde, topics.runs, 'run-config', (r) => r.runId);
  await runs.start();
  await runs.ready();
  const ch: ClickHouseClient = clickhouseClient(clickhouse.url, clickhouse.database);
  const registry = new Registry();
  const pipeline = opts.withPipeline ? await startPipeline({ ...opts.pipeline, logger: opts.logger }) : undefined;
  const registries = pipeline ? [registry, pipeline.metrics.registry] : [registry];
  const ingested = new Counter({ name: 'ipt_ingest_records_total', help: 'Records accepted (result=accepted) or rejected over HTTP', labelNames: ['result'], registers: [registry] });
  const lagGauge = new Gauge({ name: 'ipt_stage_lag', help: 'Records behind per stage', labelNames: ['stage', 'topic'], registers: [registry] });
  const lagInserter = new BatchInserter(ch, 500, 1000);
  const stopLag = startLagSampler(kafka, topics, lagInserter, lagGauge, opts.lagIntervalMs, (e) => opts.logger.warn({ err: e.message }, 'lag sample failed'));
  const jobs = new Map<string, Job>();

  const app = Fastify({ logger: false, bodyLimit: opts.limits.bodyBytes });
  const expected = Buffer.from(`Bearer ${opts.token}`);
  const authorize = async (req: FastifyRequest, reply: FastifyReply) => {
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return reply.code(401).send({ error: 'missing or wrong bearer token' });
  };
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) opts.logger.error({ err }, 'request failed');
    void reply.code(status).send({ error: err.message });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = pipeline ? pipeline.ready() : true;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'starting' });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return (await Promise.all(registries.map((r) => r.metrics()))).join('\n');
  });

  app.post('/v1/runs', { preHandler: authorize }, async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b.runId !== 'string') return reply.code(400).send({ error: '"runId" (string) is required' });
    const preset = b.preset ?? 'none';
    if (typeof preset !== 'string' || !isPreset(preset)) return reply.code(400).send({ error: '"preset" must be none, from-scratch or domain-adaptive' });
    if (runs.peek(b.runId)) return reply.code(409).send({ error: `run "${b.runId}" exists` });
    const pick = <T>(k: string, fallback: T): T => (b[k] === undefined ? fallback : (b[k] as T));
    let run: RunConfig;
    try {
      run = openRun({
        ...opts.runDefaults,
        runId: b.runId,
        preset,
        convertFraction: pick<number | undefined>('convertFraction', undefined),
        generalWeight: pick<number | undefined>('generalWeight', undefined),
        seed: pick('seed', opts.runDefaults.seed),
        model: pick('model', opts.runDefaults.model),
        maxModelLen: pick('maxModelLen', opts.runDefaults.maxModelLen),
        maxNewTokens: pick('maxNewTokens', opts.runDefaults.maxNewTokens),
        lengthEstimate: pick('lengthEstimate', opts.runDefaults.lengthEstimate),
        temperature: pick('temperature', opts.runDefaults.temperature),
        rounds: 1,
      });
    } catch (err) {
      return reply.code(400).send({ error: (err as Error).message });
    }
    await writer.writeRun(run);
    await runs.get(run.runId, 10_000);
    return reply.code(201).send(run);
  });

  app.post('/v1/runs/:runId/texts', { preHandler: authorize }, async (req, reply) => {
    const { runId } = req.params as { runId: string };
    const run = runs.peek(runId);
    if (!run) return reply.code(404).send({ error: `no run "${runId}": create it with POST /v1/runs` });
    if (run.convertedTexts !== null) return reply.code(409).send({ error: `run "${runId}" is a bounded run; HTTP ingest feeds open runs` });
    const result = validateIngestBatch(run, req.body, opts.limits);
    if ('error' in result) return reply.code(400).send({ error: result.error });
    // Accepted records are acknowledged by Kafka before the answer goes out: a 2xx or 422 means they are stored.
    if (result.accepted.length > 0) await writer.writeTexts(result.accepted, run);
    ingested.inc({ result: 'accepted' }, result.accepted.length);
    ingested.inc({ result: 'rejected' }, result.rejected.length);
    const body = { accepted: result.accepted.length, ids: result.accepted.map((r) => r.id), rejected: result.rejected };
    return reply.code(result.rejected.length > 0 ? 422 : 202).send(body);
  });

  app.post('/v1/rounds/start', { preHandler: authorize }, async (req, reply) => {
    const b = (req.body ?? {}) as { runId?: unknown; round?: unknown; newRunId?: unknown; seed?: unknown };
    if (typeof b.runId !== 'string' || !Number.isInteger(b.round)) return reply.code(400).send({ error: '"runId" (string) and "round" (integer) are required' });
    const newRunId = typeof b.newRunId === 'string' ? b.newRunId : `${b.runId}.r${b.round}.${Date.now().toString(36)}`;
    const job: Job = { id: newRunId, kind: 'rounds', state: 'running', runId: newRunId };
    jobs.set(job.id, job);
    startRounds(
      { runId: b.runId, round: b.round as number, newRunId, seed: typeof b.seed === 'number' ? b.seed : undefined },
      { pipeline: opts.pipeline, startStages: false, timeoutMs: 3_600_000, log: (l) => opts.logger.info(l), logger: opts.logger },
    ).then(
      (summary) => Object.assign(job, { state: 'done', summary }),
      (err: Error) => Object.assign(job, { state: 'failed', error: err.message }),
    );
    return reply.code(202).send({ job: job.id, runId: newRunId, status: `/v1/jobs/${encodeURIComponent(job.id)}` });
  });

  app.get('/v1/jobs/:id', { preHandler: authorize }, async (req, reply) => {
    const job = jobs.get((req.params as { id: string }).id);
    return job ? job : reply.code(404).send({ error: 'no such job' });
  });

  app.post('/v1/replay', { preHandler: authorize }, async (req, reply) => {
    const b = (req.body ?? {}) as { topic?: unknown; from?: unknown; stage?: unknown };
    if (typeof b.topic !== 'string' || typeof b.from !== 'string') return reply.code(400).send({ error: '"topic" and "from" (earliest, an offset or an ISO time) are required' });
    if (b.stage !== undefined && !STAGES.includes(b.stage as StageName)) return reply.code(400).send({ error: `unknown stage ${String(b.stage)}` });
    try {
      return await replayTopic(kafka, topics, b.topic, parseReplayFrom(b.from), b.stage as StageName | undefined);
    } catch (err) {
      return reply.code(409).send({ error: (err as Error).message });
    }
  });

  app.get('/api/dashboard', async (req) => {
    const run = (req.query as { run?: string }).run || undefined;
    const [runList, rounds, f1, tput, lag] = await Promise.all([runIds(ch), roundAggregates(ch, run), f1ByDataset(ch, run), throughput(ch, run), lagOverTime(ch)]);
    return { run: run ?? null, runs: runList, rounds, f1, throughput: tput, lag };
  });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/assets/chart.umd.min.js', async (_req, reply) => reply.type('application/javascript').header('cache-control', 'max-age=3600').send(chartJs));

  await app.listen({ port: opts.port, host: opts.host });
  const addr = app.server.address();
  const url = typeof addr === 'object' && addr ? `http://${opts.host}:${addr.port}` : `http://${opts.host}:${opts.port}`;
  return {
    app,
    url,
    pipeline,
    async close() {
      stopLag();
      await app.close();
      await lagInserter.flushAll();
      await Promise.allSettled([pipeline?.stop(), runs.stop(), writer.stop()]);
      await ch.close();
    },
  };
}
