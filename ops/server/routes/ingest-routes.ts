import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify';
import type { Counter } from 'prom-client';
import { openRun, type RunSettings } from '../../../connectors/ingest/run-plan.ts';
import type { PipelineWriter } from '../../../connectors/ingest/pipeline-writer.ts';
import { validateIngestBatch, type IngestLimits, type Rejected } from '../../../connectors/ingest/http-ingest.ts';
import type { RunIdRegistry } from '../../../connectors/ingest/http-run-ids.ts';
import type { Logger } from '../../../processors/runtime/logger.ts';
import type { TopicTable } from '../../../processors/runtime/topic-table.ts';
import type { PresetName, RunConfig } from '../../../processors/pipeline/run-config.ts';
import { createRunBody } from '../request-schemas.ts';

export interface IngestDeps {
  authorize: onRequestHookHandler;
  writer: PipelineWriter;
  runs: TopicTable<RunConfig>;
  seenIds: RunIdRegistry;
  limits: IngestLimits;
  runDefaults: Omit<RunSettings, 'runId' | 'preset'>;
  ingested: Counter<'result'>;
  logger: Logger;
}

/** Open runs over HTTP: POST /v1/runs creates one, POST /v1/runs/:runId/texts feeds it. */
export function ingestRoutes(d: IngestDeps): FastifyPluginAsync {
  /**
   * Undefined when the writer can store records, else why not. A producer dropped after a failed send is replaced
   * here (waiting a few seconds at most), so ingest recovers on its own without a restart.
   */
  const writerUnavailable = async (waitMs = 5000): Promise<string | undefined> => {
    if (d.writer.health().ready) return undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([d.writer.reconnect().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    const h = d.writer.health();
    return h.ready ? undefined : h.reason;
  };

  return async (app) => {
    app.post('/v1/runs', { onRequest: d.authorize, schema: { body: createRunBody } }, async (req, reply) => {
      // The body schema has checked every field's type and range.
      const b = req.body as Record<string, unknown> & { runId: string };
      const preset = (b.preset ?? 'none') as PresetName;
      if (d.runs.peek(b.runId)) return reply.code(409).send({ error: `run "${b.runId}" exists` });
      const pick = <T>(k: string, fallback: T): T => (b[k] === undefined ? fallback : (b[k] as T));
      const defaults = d.runDefaults;
      let run: RunConfig;
      try {
        run = openRun({
          ...defaults,
          runId: b.runId,
          preset,
          convertFraction: pick<number | undefined>('convertFraction', undefined),
          generalWeight: pick<number | undefined>('generalWeight', undefined),
          seed: pick('seed', defaults.seed),
          model: pick('model', defaults.model),
          maxModelLen: pick('maxModelLen', defaults.maxModelLen),
          maxNewTokens: pick('maxNewTokens', defaults.maxNewTokens),
          lengthEstimate: pick('lengthEstimate', defaults.lengthEstimate),
          temperature: pick('temperature', defaults.temperature),
          rounds: 1,
        });
      } catch (err) {
        return reply.code(400).send({ error: (err as Error).message });
      }
      const unavailable = await writerUnavailable();
      if (unavailable) return reply.code(503).send({ error: `cannot store runs now: ${unavailable}` });
      try {
        await d.writer.writeRun(run);
      } catch (err) {
        d.logger.error({ err, runId: run.runId }, 'storing a run failed');
        return reply.code(503).send({ error: `storing run "${run.runId}" failed (${(err as Error).message}): it may or may not be stored; creating it again answers 409 if it is` });
      }
      await d.runs.get(run.runId, 10_000);
      return reply.code(201).send(run);
    });

    /**
     * The answer accounts for every record of the request: `ids` were acknowledged by Kafka (stored), `rejected` were
     * not stored (invalid, a repeated id, too large for the topic, or never sent after a failure), and `unknown` were
     * in a produce request that failed, so Kafka may hold them. 202: all stored. 422: some rejected, the rest stored.
     * When storing fails part-way: 207 if some were stored, else 503; either way the body says which records are which.
     */
    app.post('/v1/runs/:runId/texts', { onRequest: d.authorize }, async (req, reply) => {
      const { runId } = req.params as { runId: string };
      const run = d.runs.peek(runId);
      if (!run) return reply.code(404).send({ error: `no run "${runId}": create it with POST /v1/runs` });
      if (run.convertedTexts !== null) return reply.code(409).send({ error: `run "${runId}" is a bounded run; HTTP ingest feeds open runs` });
      const unavailable = await writerUnavailable();
      if (unavailable) return reply.code(503).send({ error: `cannot store texts now: ${unavailable}` });
      const seen = d.seenIds.forRun(runId);
      // Validating and taking the ids happen with no await between them: a racing request sees them taken.
      const result = validateIngestBatch(run, req.body, d.limits, Date.now(), seen);
      if ('error' in result) return reply.code(400).send({ error: result.error });
      seen.take(result.accepted.map((r) => r.id));
      const outcome = await d.writer.tryWriteTexts(result.accepted, run);
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
      d.ingested.inc({ result: 'accepted' }, ids.length);
      d.ingested.inc({ result: 'rejected' }, rejected.length);
      if (unknown.length > 0) d.ingested.inc({ result: 'unknown' }, unknown.length);
      if (outcome.error) {
        d.logger.error({ err: outcome.error, runId, stored: ids.length, unknown: unknown.length, unsent: outcome.unsent.length }, 'storing ingested texts failed');
        return reply.code(ids.length > 0 ? 207 : 503).send({ error: `storing stopped: ${why}`, accepted: ids.length, ids, rejected, unknown });
      }
      return reply.code(rejected.length > 0 ? 422 : 202).send({ accepted: ids.length, ids, rejected });
    });
  };
}
