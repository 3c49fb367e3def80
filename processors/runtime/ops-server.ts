import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready(): boolean;
}

/** /metrics (Prometheus text), /healthz (the process is up) and /readyz (every processor has joined its group). */
export async function startOpsServer(opts: { port: number; host?: string; registry: Registry; readiness: Readiness[] }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = opts.readiness.every((r) => r.ready());
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'starting' };
  });
  await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  return app;
}
