import type { FastifyInstance } from 'fastify';
import type { Logger } from './logger.ts';

/** Graceful shutdown on SIGTERM/SIGINT: stop fetching, finish in-flight work, commit, close, then exit. */
/** Anything that can be stopped and says when it stopped by itself (a processor, a whole pipeline). */
export interface Stoppable {
  stop(): Promise<void>;
  done: Promise<void>;
}

export function stopOnSignals(running: Stoppable[], logger: Logger, server?: FastifyInstance): Promise<void> {
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
