import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { ConfigError } from './config-error.ts';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Logs on stderr, so that stdout stays free for a command's own output (summaries, --json lines): JSON lines, for
 * collectors, unless stderr is a terminal, where they are printed for people (pino-pretty; IPT_LOG_FORMAT=json keeps
 * JSON there too, IPT_LOG_FORMAT=pretty asks for it anywhere).
 */
export function createLogger(name: string, level = process.env.IPT_LOG_LEVEL ?? 'info'): Logger {
  checkLevel(level);
  const format = logFormat();
  const pretty = format === 'pretty' || (format !== 'json' && process.stderr.isTTY === true);
  const options = { name, level, base: { pid: process.pid } };
  if (!pretty) return pino(options, pino.destination(2));
  return pino(options, PinoPretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', singleLine: true }));
}
export type { Logger };

function checkLevel(level: string): void {
  if (!LEVELS.includes(level)) throw new ConfigError(`IPT_LOG_LEVEL=${level}: expected one of ${LEVELS.join(', ')}`);
}

function logFormat(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const format = env.IPT_LOG_FORMAT;
  if (format !== undefined && format !== '' && format !== 'json' && format !== 'pretty') throw new ConfigError(`IPT_LOG_FORMAT=${format}: expected json or pretty`);
  return format;
}

/** The log settings of the environment, checked before a command does anything (a bad one exits 2, naming it). */
export function checkLogSettings(env: NodeJS.ProcessEnv = process.env): void {
  if (env.IPT_LOG_LEVEL) checkLevel(env.IPT_LOG_LEVEL);
  logFormat(env);
}

/** What a component that reports outages needs of a logger: a pino logger, or a test's capture. */
export interface NoticeLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
