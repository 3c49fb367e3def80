import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import { f1ByDataset, lagOverTime, roundAggregates, runIds, throughput } from '../../connectors/clickhouse/run-queries.ts';
import { openRun, PipelineWriter, type RunSettings } from '../../connectors/ingest/run-ingest.ts';
import { validateIngestBatch, type IngestLimits, type Rejected } from '../../connectors/ingest/http-ingest.ts';
import { DEFAULT_MAX_RUN_IDS, RunIdRegistry } from '../../connectors/ingest/http-run-ids.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';
import type { PresetName, RunConfig } from '../../processors/pipeline/run-config.ts';
import { ensurePipelineTopics, startPipeline, type PipelineOptions, type RunningPipeline } from '../pipeline/start-pipeline.ts';
import type { StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { startLagSampler } from './lag-sampler.ts';
import { createRunBody, dashboardQuery, replayBody, roundsStartBody } from './request-schemas.ts';
import { describeValidationErrors } from '../../connectors/http/validation-errors.ts';
import { useStrictJson } from './strict-json.ts';
import { exposureWarnings } from './exposure.ts';
import { bearerCheck } from '../../connectors/http/bearer.ts';
import { parseReplayFrom, replayTopic, type ReplayFrom } from '../jobs/replay.ts';
import { startRounds } from '../jobs/rounds-start.ts';
import type { PipelineRunSummary } from '../jobs/pipeline-run.ts';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export interface ServeOptions {
  port: number;
  host: string;
  /** Bearer token for ingest and control routes. */
  token: string;
  /** The token was made up for this process (none configured): worth a warning when others can reach the server. */
  tokenGenerated?: boolean;
  pipeline: Omit<PipelineOptions, 'logger'>;
  /** Run the pipeline's stages in this process too. */
  withPipeline: boolean;
  /** maxRunIds: ids remembered per open run to refuse repeats (default IPT_MAX_RUN_IDS, else 1,000,000; see RunIdRegistry). */
  limits: IngestLimits & { bodyBytes: number; maxRunIds?: number };
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
  // "Bearer " alone would match an empty token.
  if (opts.token === '') throw new Error('serve: the API token is empty');
  const seenIds = new RunIdRegistry(opts.limits.maxRunIds ?? maxRunIdsFromEnv());
  const page = readFileSync(join(here, 'dashboard.html'), 'utf8');
  // Chart.js's UMD build, served from the installed package (the page loads nothing from elsewhere).
  const chartJs = readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const { runtime, clickhouse } = opts.pipeline;
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  await migrate(clickhouse.url, clickhouse.database);
  const kafka: Kafka = createKafka({ brokers: runtime.brokers, security: runtime.security, clientId: `${runtime.clientId}-serve`, logger: opts.logger });
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

  const app = Fastify({
    logger: false,
    bodyLimit: opts.limits.bodyBytes,
    // Path parameters are run and job ids (up to 128 characters, a job's id a few more): the default of 100 answered
    // 414 for a run that POST /v1/runs had just created. An unknown id up to this length gets 404, a longer one 414.
    maxParamLength: 1024,
    // In the error shape of every other answer, and without repeating the URL.
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => void reply.code(err.statusCode ?? 400).send({ error: urlProblem(err) }),
    // Types are checked, not coerced ("4096" is not an integer), and unknown fields are refused, not dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    schemaErrorFormatter: describeValidationErrors,
  });
  useStrictJson(app);
  const authorized = bearerCheck(opts.token);
  // An onRequest hook: the token is checked before the body is read, so an unauthenticated client cannot make the
  // server buffer bodies of up to bodyBytes each.
  const authorize = async (req: FastifyRequest, reply: FastifyReply) => {
    if (authorized(req.headers.authorization)) return;
    // Closing the connection spares reading (and discarding) the rest of the body.
    if ((req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined) reply.header('connection', 'close');
    return reply.code(401).send({ error: 'missing or wrong bearer token' });
  };
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) opts.logger.error({ err }, 'request failed');
    void reply.code(status).send({ error: err.message });
  });
  // Fastify's own answer repeats the URL, query string included, where a client may have put its token.
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  /**
   * Undefined when the writer can store records, else why not. A producer dropped after a failed send is replaced
   * here (waiting a few seconds at most), so ingest recovers on its own without a restart.
   */
  const writerUnavailable = async (waitMs = 5000): Promise<string | undefined> => {
    if (writer.health().ready) return undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([writer.reconnect().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    const h = writer.health();
    return h.ready ? undefined : h.reason;
  };

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const w = writer.health();
    if (!w.ready) {
      // Reported as it is now; the replacement goes on in the background and a later probe sees its result.
      void writer.reconnect().catch(() => undefined);
      return reply.code(503).send({ status: 'unavailable', writer: w.reason });
    }
    const ready = pipeline ? pipeline.ready() : true;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'starting' });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return (await Promise.all(registries.map((r) => r.metrics()))).join('\n');
  });

  app.post('/v1/runs', { onRequest: authorize, schema: { body: createRunBody } }, async (req, reply) => {
    // The body schema has checked every field's type and range.
    const b = req.body as Record<string, unknown> & { runId: string };
    const preset = (b.preset ?? 'none') as PresetName;
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
    const unavailable = await writerUnavailable();
    if (unavailable) return reply.code(503).send({ error: `cannot store runs now: ${unavailable}` });
    try {
      await writer.writeRun(run);
    } catch (err) {
      opts.logger.error({ err, runId: run.runId }, 'storing a run failed');
      return reply.code(503).send({ error: `storing run "${run.runId}" failed (${(err as Error).message}): it may or may not be stored; creating it again answers 409 if it is` });
    }
    await runs.get(run.runId, 10_000);
    return reply.code(201).send(run);
  });

  /**
   * The answer accounts for every record of the request: `ids` were acknowledged by Kafka (stored), `rejected` were
   * not stored (invalid, a repeated id, too large for the topic, or never sent after a failure), and `unknown` were
   * in a produce request that failed, so Kafka may hold them. 202: all stored. 422: some rejected, the rest stored.
   * When storing fails part-way: 207 if some were stored, else 503; either way the body says which records are which.
   */
  app.post('/v1/runs/:runId/texts', { onRequest: authorize }, async (req, reply) => {
    const { runId } = req.params as { runId: string };
    const run = runs.peek(runId);
    if (!run) return reply.code(404).send({ error: `no run "${runId}": create it with POST /v1/runs` });
    if (run.convertedTexts !== null) return reply.code(409).send({ error: `run "${runId}" is a bounded run; HTTP ingest feeds open runs` });
    const unavailable = await writerUnavailable();
    if (unavailable) return reply.code(503).send({ error: `cannot store texts now: ${unavailable}` });
    const seen = seenIds.forRun(runId);
    // Validating and taking the ids happen with no await between them: a racing request sees them taken.
    const result = validateIngestBatch(run, req.body, opts.limits, Date.now(), seen);
    if ('error' in result) return reply.code(400).send({ error: result.error });
    seen.take(result.accepted.map((r) => r.id));
    const outcome = await writer.tryWriteTexts(result.accepted, run);
    const at = (i: number) => ({ index: result.indices[i]!, id: result.accepted[i]!.id });
    const why = outcome.error?.message;
    const rejected: Rejected[] = [
      ...result.rejected,
      ...outcome.refused.map((r) => ({ ...at(r.index), reason: r.reason })),
      ...outcome.unsent.map((i) => ({ ...at(i), reason: `not stored: storing stopped at an earlier record (${why}); send it again` })),
    ].sort((a, b) => a.index - b.index);
    const unknown = outcome.unknown.map((i) => ({ ...at(i), reason: `outcome unknown: the request that carried it failed (${why}); Kafka may hold it, and sending it again may store it twice` }));
    seen.release([...outcome.refused.map((r) => r.index), ...outcome.unsent, ...outcome.unknown].map((i) => result.accepted[i]!.id));
    const ids = outcome.stored.map((i) => result.accepted[i]!.id);
    ingested.inc({ result: 'accepted' }, ids.length);
    ingested.inc({ result: 'rejected' }, rejected.length);
    if (unknown.length > 0) ingested.inc({ result: 'unknown' }, unknown.length);
    if (outcome.error) {
      opts.logger.error({ err: outcome.error, runId, stored: ids.length, unknown: unknown.length, unsent: outcome.unsent.length }, 'storing ingested texts failed');
      return reply.code(ids.length > 0 ? 207 : 503).send({ error: `storing stopped: ${why}`, accepted: ids.length, ids, rejected, unknown });
    }
    return reply.code(rejected.length > 0 ? 422 : 202).send({ accepted: ids.length, ids, rejected });
  });

  app.post('/v1/rounds/start', { onRequest: authorize, schema: { body: roundsStartBody } }, async (req, reply) => {
    const b = req.body as { runId: string; round: number; newRunId?: string; seed?: number };
    const newRunId = b.newRunId ?? `${b.runId}.r${b.round}.${Date.now().toString(36)}`;
    const job: Job = { id: newRunId, kind: 'rounds', state: 'running', runId: newRunId };
    jobs.set(job.id, job);
    startRounds(
      { runId: b.runId, round: b.round, newRunId, seed: b.seed },
      { pipeline: opts.pipeline, startStages: false, timeoutMs: 3_600_000, log: (l) => opts.logger.info(l), logger: opts.logger },
    ).then(
      (summary) => Object.assign(job, { state: 'done', summary }),
      (err: Error) => Object.assign(job, { state: 'failed', error: err.message }),
    );
    return reply.code(202).send({ job: job.id, runId: newRunId, status: `/v1/jobs/${encodeURIComponent(job.id)}` });
  });

  app.get('/v1/jobs/:id', { onRequest: authorize }, async (req, reply) => {
    const job = jobs.get((req.params as { id: string }).id);
    return job ? job : reply.code(404).send({ error: 'no such job' });
  });

  app.post('/v1/replay', { onRequest: authorize, schema: { body: replayBody } }, async (req, reply) => {
    const b = req.body as { topic: string; from: string; stage?: StageName };
    let from: ReplayFrom;
    try {
      from = parseReplayFrom(b.from);
    } catch (err) {
      return reply.code(400).send({ error: `body: "from": ${(err as Error).message}` });
    }
    try {
      return await replayTopic(kafka, topics, b.topic, from, b.stage);
    } catch (err) {
      return reply.code(409).send({ error: (err as Error).message });
    }
  });

  // The run reaches ClickHouse as a query parameter, or a string literal where the server has none (run-queries.ts).
  app.get('/api/dashboard', { schema: { querystring: dashboardQuery } }, async (req, reply) => {
    const run = (req.query as { run?: string }).run || undefined;
    try {
      const [runList, rounds, f1, tput, lag] = await Promise.all([runIds(ch), roundAggregates(ch, run), f1ByDataset(ch, run), throughput(ch, run), lagOverTime(ch)]);
      return { run: run ?? null, runs: runList, rounds, f1, throughput: tput, lag };
    } catch (err) {
      // ClickHouse down or overloaded: not the server's failure, and the page asks again every 5 s.
      opts.logger.warn({ err: (err as Error).message }, 'dashboard queries failed');
      return reply.code(503).send({ error: `dashboard queries failed: ${(err as Error).message}` });
    }
  });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/assets/chart.umd.min.js', async (_req, reply) => reply.type('application/javascript').header('cache-control', 'max-age=3600').send(chartJs));

  await app.listen({ port: opts.port, host: opts.host });
  for (const w of exposureWarnings(opts.host, opts.tokenGenerated === true)) opts.logger.warn({ host: opts.host }, w);
  const addr = app.server.address();
  const url = typeof addr === 'object' && addr ? `http://${opts.host}:${addr.port}` : `http://${opts.host}:${opts.port}`;
  return {
    app,
    url,
    pipeline,
    async close() {
      stopLag();
      await app.close();
      // close(), not flushAll(): during a ClickHouse outage a flush would wait out the whole outage budget.
      await lagInserter.close();
      await Promise.allSettled([pipeline?.stop(), runs.stop(), writer.stop()]);
      await ch.close();
    },
  };
}

/** What is wrong with a URL the router could not take, without repeating it. */
function urlProblem(err: FastifyError): string {
  if (err.code === 'FST_ERR_BAD_URL') return 'the path is not valid percent-encoded UTF-8';
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return 'a path parameter is too long';
  return err.message;
}

/** IPT_MAX_RUN_IDS, the ids remembered per open run, when set. */
function maxRunIdsFromEnv(): number {
  const raw = process.env.IPT_MAX_RUN_IDS;
  if (raw === undefined || raw === '') return DEFAULT_MAX_RUN_IDS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`IPT_MAX_RUN_IDS=${raw} must be a positive integer`);
  return n;
}
