import type { FastifyInstance } from 'fastify';
import type { Logger } from './logger.ts';
import { setting, SETTINGS } from './settings.ts';

/** The default of IPT_SHUTDOWN_TIMEOUT_MS. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = SETTINGS.IPT_SHUTDOWN_TIMEOUT_MS.fallback;

/** Anything that can be stopped and says when it stopped by itself (a processor, a whole pipeline, a server). */
export interface Stoppable {
  /** Named when it fails or does not stop in time. */
  name?: string;
  /** Stop fetching, finish and commit the batch in flight, close clients. */
  stop(): Promise<void>;
  /** Settles when it stopped for good: after stop(), or by itself. An Error value (or `failure`) says it failed. */
  done: Promise<void | Error>;
  /** Why it stopped by itself, for a `done` that resolves with nothing. */
  readonly failure?: Error;
}

/** A stage that stopped without being asked to, or failed while stopping: the process exits 1 with this message. */
export class StageFailure extends Error {
  override name = 'StageFailure';
}

/** How long a shutdown may take before the process gives up on it and exits 1 (IPT_SHUTDOWN_TIMEOUT_MS, at most setTimeout's limit). */
export const shutdownTimeoutMs = (env: NodeJS.ProcessEnv = process.env): number => setting('IPT_SHUTDOWN_TIMEOUT_MS', env);

export interface ShutdownOptions {
  /** Default: IPT_SHUTDOWN_TIMEOUT_MS, else 30 s. */
  timeoutMs?: number;
  /** Gives up on a shutdown that did not finish: by default writes the line to stderr and exits 1. */
  giveUp?: (line: string) => void;
}

// A terminal's Ctrl-C reaches every process in the group and npm forwards it to its child as well: the same signal
// twice this close together is one request, not an operator insisting.
const REPEAT_WINDOW_MS = 1000;

/**
 * Runs until SIGTERM/SIGINT, then stops everything gracefully: the stages first (they finish and commit the batch in
 * flight and close their clients), then the ops server. Resolves once all stopped; rejects with a StageFailure when
 * a stage stopped by itself (the others are stopped first) or failed to stop. Bounded: a second signal, or the
 * shutdown timeout passing, gives up with a line naming what had not stopped (the process exits 1).
 */
export function stopOnSignals(running: Stoppable[], logger: Logger, server?: FastifyInstance, opts: ShutdownOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? shutdownTimeoutMs();
  const giveUp =
    opts.giveUp ??
    ((line: string) => {
      process.stderr.write(`${line}\n`);
      process.exit(1);
    });
  const label = (r: Stoppable, i: number) => r.name ?? (running.length === 1 ? 'the stage' : `stage ${i + 1}`);

  return new Promise((resolve, reject) => {
    let trigger: string | undefined;
    let firstSignalAt = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const failures: Error[] = [];
    const pending = new Set<string>();

    const end = (line: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      detach();
      giveUp(line);
    };
    const shutdown = async (why: string) => {
      trigger = why;
      logger.info({ trigger: why }, 'shutting down');
      timer = setTimeout(() => end(`ipt: shutdown (${why}) timed out after ${timeoutMs} ms (IPT_SHUTDOWN_TIMEOUT_MS): ${[...pending].join(', ')} did not stop in time`), timeoutMs);
      const stopOne = async (name: string, stop: () => Promise<void>) => {
        pending.add(name);
        try {
          await stop();
        } catch (err) {
          failures.push(new StageFailure(`${name} failed to stop: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        } finally {
          pending.delete(name);
        }
      };
      if (server) pending.add('the ops server');
      await Promise.all(running.map((r, i) => stopOne(label(r, i), () => r.stop())));
      if (server) await stopOne('the ops server', () => server.close());
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      detach();
      if (failures.length > 0) reject(failures[0]);
      else resolve();
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (finished) return;
      if (trigger === undefined) {
        firstSignalAt = Date.now();
        void shutdown(signal);
      } else if (!(trigger === signal && Date.now() - firstSignalAt < REPEAT_WINDOW_MS)) {
        end(`ipt: ${signal} while shutting down (${trigger}): ${[...pending].join(', ') || 'nothing'} had not stopped`);
      }
    };
    const detach = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    running.forEach((r, i) => {
      const stoppedBy = (value: unknown) => {
        if (finished) return;
        const cause = value instanceof Error ? value : r.failure;
        if (trigger !== undefined) {
          // Asked to stop: stopping without an error is the normal end.
          if (cause) failures.push(new StageFailure(`${label(r, i)} failed while stopping: ${cause.message}`, { cause }));
          return;
        }
        failures.push(new StageFailure(`${label(r, i)} stopped by itself${cause ? `: ${cause.message}` : ' (nothing asked it to stop)'}`, { cause }));
        logger.error({ err: cause, stage: label(r, i) }, 'stage stopped by itself: stopping the rest');
        void shutdown(`${label(r, i)} stopped`);
      };
      r.done.then(stoppedBy, stoppedBy);
    });
  });
}

/**
 * A stage that something else stops (a pipeline's stage, stopped by the pipeline's own stop()): watched for
 * stopping by itself, and its stop() waits until it has stopped.
 */
export function watchOnly(stage: { name: string; done: Promise<void | Error>; readonly failure?: Error }): Stoppable {
  return {
    name: stage.name,
    stop: () => stage.done.then(() => undefined),
    done: stage.done,
    get failure() {
      return stage.failure;
    },
  };
}

/**
 * Makes a command whose work stopped silently fail: when the event loop drains while `work` is still pending,
 * nothing is left that could ever settle it, so the process says so and exits 1 instead of exiting 0 with no output.
 */
export function exitIfUnsettled(command: string, work: Promise<unknown>): void {
  let settled = false;
  const mark = () => {
    settled = true;
  };
  work.then(mark, mark);
  process.on('beforeExit', () => {
    if (settled) return;
    process.stderr.write(`ipt: ${command} stopped with work unfinished (internal error: nothing left to wait on)\n`);
    process.exit(1);
  });
}
