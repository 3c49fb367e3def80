import { createRequire } from 'node:module';
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from './logger.ts';
import { processKafkaSecurity, type KafkaSecurity } from './kafka-security.ts';
import { deniedType, type DeniedType } from './kafka-denial.ts';

/**
 * The messages of the broker errors kafkajs itself retries (coordinator loading, leader elections, concurrent
 * transactions…), from its own error table. It logs each such answer at error level although it goes on; they are
 * logged at debug here, so an error line in the log means something failed.
 */
const RETRIABLE_ANSWERS: ReadonlySet<string> = new Set(
  (createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { errorCodes: { message: string; retriable: boolean }[] }).errorCodes.filter((e) => e.retriable).map((e) => e.message),
);

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * A kafkajs client whose own log lines go through pino (warnings and errors only, by default). TLS and SASL come from
 * the IPT_KAFKA_SECURITY_PROTOCOL family of variables unless given.
 */
export function createKafka(opts: { brokers: string[]; clientId: string; logger: Logger; level?: logLevel; security?: KafkaSecurity }): Kafka {
  const security = opts.security ?? processKafkaSecurity();
  const denial: { type?: DeniedType; at: number } = { at: 0 };
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...(security.ssl ? { ssl: security.ssl } : {}),
    ...(security.sasl ? { sasl: security.sasl } : {}),
    logLevel: opts.level ?? logLevel.WARN,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, ...rest } = log;
        const denied = rest.error === undefined ? undefined : deniedType({ message: String(rest.error) });
        if (denied) Object.assign(denial, { type: denied, at: Date.now() });
        const retried = level === logLevel.ERROR && (RETRIABLE_ANSWERS.has(String(rest.error)) || (rest.retryCount !== undefined && RETRIABLE_ANSWERS.has(message.slice(message.indexOf(': ') + 2))));
        opts.logger[retried ? 'debug' : (levels[level] ?? 'info')]({ kafkajs: rest }, message);
      },
  });
  denials.set(kafka, denial);
  return kafka;
}

const denials = new WeakMap<Kafka, { type?: DeniedType; at: number }>();

/**
 * The authorization failure a broker answered this client within the last `withinMs`, if any. kafkajs turns a refused
 * FindCoordinator (a group or a transactional id without its ACL) into "Failed to find group coordinator"; the
 * broker's answer survives only in its log line, which this client's log creator keeps.
 */
export function recentDenial(kafka: Kafka, withinMs = 60_000): DeniedType | undefined {
  const d = denials.get(kafka);
  return d?.type !== undefined && Date.now() - d.at <= withinMs ? d.type : undefined;
}
