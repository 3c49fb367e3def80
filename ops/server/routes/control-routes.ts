import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify';
import type { Kafka } from 'kafkajs';
import type { Logger } from '../../../processors/runtime/logger.ts';
import type { PipelineTopics, StageName } from '../../../processors/pipeline/pipeline-topics.ts';
import type { PipelineOptions } from '../../pipeline/start-pipeline.ts';
import { parseReplayFrom, replayTopic, type ReplayFrom } from '../../jobs/replay.ts';
import { startRounds } from '../../jobs/rounds-start.ts';
import type { PipelineRunSummary } from '../../jobs/pipeline-run.ts';
import { replayBody, roundsStartBody } from '../request-schemas.ts';

interface Job {
  id: string;
  kind: 'rounds';
  state: 'running' | 'done' | 'failed';
  runId: string;
  summary?: PipelineRunSummary;
  error?: string;
}

export interface ControlDeps {
  authorize: onRequestHookHandler;
  kafka: Kafka;
  topics: PipelineTopics;
  pipeline: Omit<PipelineOptions, 'logger'>;
  logger: Logger;
}

/** Round and replay control: start the next round of a run as a job, follow the job, move stages back on a topic. */
export function controlRoutes(d: ControlDeps): FastifyPluginAsync {
  const jobs = new Map<string, Job>();
  return async (app) => {
    app.post('/v1/rounds/start', { onRequest: d.authorize, schema: { body: roundsStartBody } }, async (req, reply) => {
      const b = req.body as { runId: string; round: number; newRunId?: string; seed?: number };
      const newRunId = b.newRunId ?? `${b.runId}.r${b.round}.${Date.now().toString(36)}`;
      const job: Job = { id: newRunId, kind: 'rounds', state: 'running', runId: newRunId };
      jobs.set(job.id, job);
      startRounds(
        { runId: b.runId, round: b.round, newRunId, seed: b.seed },
        { pipeline: d.pipeline, startStages: false, timeoutMs: 3_600_000, log: (l) => d.logger.info(l), logger: d.logger },
      ).then(
        (summary) => Object.assign(job, { state: 'done', summary }),
        (err: Error) => Object.assign(job, { state: 'failed', error: err.message }),
      );
      return reply.code(202).send({ job: job.id, runId: newRunId, status: `/v1/jobs/${encodeURIComponent(job.id)}` });
    });

    app.get('/v1/jobs/:id', { onRequest: d.authorize }, async (req, reply) => {
      const job = jobs.get((req.params as { id: string }).id);
      return job ? job : reply.code(404).send({ error: 'no such job' });
    });

    app.post('/v1/replay', { onRequest: d.authorize, schema: { body: replayBody } }, async (req, reply) => {
      const b = req.body as { topic: string; from: string; stage?: StageName };
      let from: ReplayFrom;
      try {
        from = parseReplayFrom(b.from);
      } catch (err) {
        return reply.code(400).send({ error: `body: "from": ${(err as Error).message}` });
      }
      try {
        return await replayTopic(d.kafka, d.topics, b.topic, from, b.stage);
      } catch (err) {
        return reply.code(409).send({ error: (err as Error).message });
      }
    });
  };
}
