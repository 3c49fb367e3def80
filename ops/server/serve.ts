import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { BatchInserter } from '../../connectors/clickhouse/batch-inserter.ts';
import type { RunSettings } from '../../connectors/ingest/run-plan.ts';
import { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import type { IngestLimits } from '../../connectors/ingest/http-ingest.ts';
import { RunIdRegistry } from '../../connectors/ingest/http-run-ids.ts';
import { setting } from '../../processors/runtime/settings.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import { ensurePipelineTopics, startPipeline, type PipelineOptions, type RunningPipeline } from '../pipeline/start-pipeline.ts';
import { startDeadLetterSampler } from './dead-letter-sampler.ts';
import { startLagSampler } from './lag-sampler.ts';
import { startMixProgressFollower } from './mix-progress-follower.ts';
import { describeValidationErrors } from '../../connectors/http/validation-errors.ts';
import { useStrictJson } from './strict-json.ts';
import { exposureWarnings } from './exposure.ts';
import { bearerCheck } from '../../connectors/http/bearer.ts';
import { healthRoutes } from './routes/health-routes.ts';
import { ingestRoutes } from './routes/ingest-routes.ts';
import { controlRoutes } from './routes/control-routes.ts';
import { dashboardRoutes } from './routes/dashboard-routes.ts';

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
  /**
   * Settles with an Error when the server cannot go on: the table of run configurations it checks ingest against gave
   * up following its topic (its consumer crashed past its rebuilds). Never settles otherwise.
   */
  done: Promise<void | Error>;
}

/**
 * The ops server: health and Prometheus metrics, HTTP ingest into open runs, round and replay control
 * (bearer-token protected), and the live dashboard fed by ClickHouse queries.
 */
export async function serve(opts: ServeOptions): Promise<Served> {
  // "Bearer " alone would match an empty token.
  if (opts.token === '') throw new Error('serve: the API token is empty');
  const seenIds = new RunIdRegistry(opts.limits.maxRunIds ?? setting('IPT_MAX_RUN_IDS'));
  const { runtime, clickhouse } = opts.pipeline;
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  await migrate(clickhouse.url, clickhouse.database);
  const kafka: Kafka = createKafka({ brokers: runtime.brokers, security: runtime.security, clientId: `${runtime.clientId}-serve`, logger: opts.logger });
  const serde = new AvroSerde(runtime.registryUrl);
  const writer = new PipelineWriter(kafka, serde, topics);
  await writer.start();
  const runs = new TopicTable<RunConfig>(kafka, serde, topics.runs, 'run-config', (r) => r.runId);
  const done = new Promise<void | Error>((resolve) => {
    runs.onFailure = (err) => resolve(new Error(`the table over ${topics.runs} stopped following it: ${err.message}`));
  });
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
  const stopDeadLetters = startDeadLetterSampler(kafka, topics, lagInserter, opts.lagIntervalMs, (e) => opts.logger.warn({ err: e.message }, 'reading the dead-letter topics failed'));
  const stopMixProgress = await startMixProgressFollower(kafka, serde, topics, lagInserter, (e) => opts.logger.warn({ err: e.message }, "following the mixer's changelog failed"));

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

  await app.register(healthRoutes({ writer, pipelineReady: pipeline && (() => pipeline.ready()), registries }));
  await app.register(ingestRoutes({ authorize, writer, runs, seenIds, limits: opts.limits, runDefaults: opts.runDefaults, ingested, logger: opts.logger }));
  await app.register(controlRoutes({ authorize, kafka, topics, pipeline: opts.pipeline, logger: opts.logger }));
  await app.register(dashboardRoutes({ ch, logger: opts.logger, backends: pipeline && (() => pipeline.backends()) }));

  await app.listen({ port: opts.port, host: opts.host });
  for (const w of exposureWarnings(opts.host, opts.tokenGenerated === true)) opts.logger.warn({ host: opts.host }, w);
  const addr = app.server.address();
  const url = typeof addr === 'object' && addr ? `http://${opts.host}:${addr.port}` : `http://${opts.host}:${opts.port}`;
  return {
    app,
    url,
    pipeline,
    done,
    async close() {
      stopLag();
      stopDeadLetters();
      await app.close();
      await stopMixProgress().catch(() => undefined);
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
