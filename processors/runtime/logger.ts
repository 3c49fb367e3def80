import { pino, type Logger } from 'pino';

/** JSON logs on stderr, so that stdout stays free for a command's own output (summaries, --json lines). */
export function createLogger(name: string, level = process.env.IPT_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
export type { Logger };

/** What a component that reports outages needs of a logger: a pino logger, or a test's capture. */
export interface NoticeLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
