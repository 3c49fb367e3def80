import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { PipelineWriter } from '../../../connectors/ingest/pipeline-writer.ts';

/** Liveness, readiness (the ingest writer can store, the in-process stages joined their groups) and Prometheus metrics. */
export function healthRoutes(d: { writer: PipelineWriter; pipelineReady?: () => boolean; registries: Registry[] }): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const w = d.writer.health();
      if (!w.ready) {
        // Reported as it is now; the replacement goes on in the background and a later probe sees its result.
        void d.writer.reconnect().catch(() => undefined);
        return reply.code(503).send({ status: 'unavailable', writer: w.reason });
      }
      const ready = d.pipelineReady ? d.pipelineReady() : true;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'starting' });
    });
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', d.registries[0]!.contentType);
      return (await Promise.all(d.registries.map((r) => r.metrics()))).join('\n');
    });
  };
}
