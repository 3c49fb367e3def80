import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { ConfigError } from './config-error.ts';
import { LOG_LEVELS, setting } from './settings.ts';

/** IPT_LOG_LEVEL, or the command's own default where it is unset ('info' for long-running processes, 'warn' for one-shot commands). */
export const logLevel = (fallback: string, env: NodeJS.ProcessEnv = process.env): string => setting('IPT_LOG_LEVEL', env) ?? fallback;

/**
 * Logs on stderr, so that stdout stays free for a command's own output (summaries, --json lines): JSON lines, for
 * collectors, unless stderr is a terminal, where they are printed for people (pino-pretty; IPT_LOG_FORMAT=json keeps
 * JSON there too, IPT_LOG_FORMAT=pretty asks for it anywhere).
 */
export function createLogger(name: string, level = logLevel('info')): Logger {
  checkLevel(level);
  const format = logFormat();
  const pretty = format === 'pretty' || (format !== 'json' && process.stderr.isTTY === true);
  const options = { name, level, base: { pid: process.pid } };
  if (!pretty) return pino(options, pino.destination(2));
  return pino(options, PinoPretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', singleLine: true }));
}
export type { Logger };

/** A level given in code (a caller's choice, not the environment's, which setting() checks). */
function checkLevel(level: string): void {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(`log level ${level}: expected one of ${LOG_LEVELS.join(', ')}`);
}

const logFormat = (env: NodeJS.ProcessEnv = process.env) => setting('IPT_LOG_FORMAT', env);

/** What a component that reports outages needs of a logger: a pino logger, or a test's capture. */
export interface NoticeLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
