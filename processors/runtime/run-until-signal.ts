import type { FastifyInstance } from 'fastify';
import type { Logger } from './logger.ts';
import type { RunningProcessor } from './run-processor.ts';

/** Graceful shutdown on SIGTERM/SIGINT: stop fetching, finish in-flight work, commit, close, then exit. */
export function stopOnSignals(running: RunningProcessor[], logger: Logger, server?: FastifyInstance): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      await Promise.all(running.map((r) => r.stop()));
      await server?.close();
      resolve();
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    void Promise.race(running.map((r) => r.done)).then(() => stop('processor stopped'));
  });
}
