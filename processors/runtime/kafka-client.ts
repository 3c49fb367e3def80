import { createRequire } from 'node:module';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Kafka, logLevel, type ISocketFactory, type LogEntry } from 'kafkajs';
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
    requestTimeout: REQUEST_TIMEOUT_MS,
    socketFactory: watchedSockets(REQUEST_TIMEOUT_MS),
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, ...rest } = log;
        const denied = rest.error === undefined ? undefined : deniedType({ message: String(rest.error) });
        if (denied) Object.assign(denial, { type: denied, at: Date.now() });
        const retried = level === logLevel.ERROR && (RETRIABLE_ANSWERS.has(String(rest.error)) || (rest.retryCount !== undefined && RETRIABLE_ANSWERS.has(message.slice(message.indexOf(': ') + 2))));
        // A broker that cannot be reached is tried again (8 retries): a warning each time; the command reports the
        // failure once, naming the variable to check, if the retries run out.
        const reconnecting = level === logLevel.ERROR && (message.startsWith('Connection error') || message.startsWith('Failed to connect to seed broker'));
        opts.logger[retried ? 'debug' : reconnecting ? 'warn' : (levels[level] ?? 'info')]({ kafkajs: rest }, message);
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

/** kafkajs's default, and the Java client's request.timeout.ms. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Sockets made as kafkajs's own factory makes them, plus one rule of the Java client (NetworkClient): a connection
 * whose oldest request is not answered within its request timeout is closed. kafkajs only fails that request and
 * sends the retry down the same connection. After a host was cut off the network the brokers' TCP stacks are in
 * retransmission backoff, so such a connection stays silent for tens of seconds after the link is back, while a new
 * one works at once. Closed with an error, kafkajs fails what was in flight as a retriable connection error and
 * connects again. Timeouts as kafkajs reckons them: Fetch and JoinGroup wait longer on purpose.
 */
function watchedSockets(timeoutMs: number): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect) : netConnect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    watch(socket, timeoutMs);
    return socket;
  };
}

/** Requests written and not answered yet, oldest first (a broker answers a connection's requests in order). */
const watched = new Map<Socket, { apiKey: number; deadline: number }[]>();
let sweeper: NodeJS.Timeout | undefined;

function watch(socket: Socket, timeoutMs: number): void {
  const pending: { apiKey: number; deadline: number }[] = [];
  watched.set(socket, pending);
  socket.once('close', () => watched.delete(socket));
  // kafkajs writes each request as one frame in one call.
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    const frame = args[0];
    const expected = Buffer.isBuffer(frame) ? expectedAnswer(frame, timeoutMs) : undefined;
    if (expected) pending.push(expected);
    return write(...args);
  }) as Socket['write'];
  // Answers are size-prefixed frames; only their boundaries matter here.
  let left = 0;
  let prefix = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    for (let at = 0; at < data.length; ) {
      if (left > 0) {
        const n = Math.min(left, data.length - at);
        left -= n;
        at += n;
        if (left === 0) pending.shift();
        continue;
      }
      const n = Math.min(4 - prefix.length, data.length - at);
      prefix = Buffer.concat([prefix, data.subarray(at, at + n)]);
      at += n;
      if (prefix.length < 4) break;
      left = prefix.readInt32BE(0);
      prefix = Buffer.alloc(0);
      if (left <= 0) pending.shift();
    }
  });
  sweeper ??= setInterval(() => {
    const now = Date.now();
    for (const [s, p] of watched) {
      if (p[0] === undefined || now <= p[0].deadline) continue;
      watched.delete(s);
      s.destroy(new Error(`no answer to a request (API key ${p[0].apiKey}) within its timeout: connection closed, to be opened again`));
    }
    if (watched.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, 1000).unref();
}

/**
 * The answer a request frame waits for, or undefined for none (Produce with acks 0). Frame: size, api key, version,
 * correlation id, client id, body; the versions kafkajs sends use the non-flexible header read here.
 */
function expectedAnswer(frame: Buffer, timeoutMs: number): { apiKey: number; deadline: number } | undefined {
  let wait = 0;
  let apiKey = -1;
  try {
    apiKey = frame.readInt16BE(4);
    const version = frame.readInt16BE(6);
    let at = 14 + Math.max(0, frame.readInt16BE(12));
    if (apiKey === 0 && version <= 8) {
      if (version >= 3) at += 2 + Math.max(0, frame.readInt16BE(at)); // transactional id
      if (frame.readInt16BE(at) === 0) return undefined;
    } else if (apiKey === 1 && version <= 11) {
      wait = frame.readInt32BE(at + 4); // after replica_id: max_wait_ms
    } else if (apiKey === 11 && version <= 5) {
      at += 2 + Math.max(0, frame.readInt16BE(at)); // group id
      const session = frame.readInt32BE(at);
      wait = (version >= 1 ? frame.readInt32BE(at + 4) : session) + 5000;
    }
  } catch {
    // Shorter than a request header (a raw SASL token): it is answered all the same.
  }
  // A second past kafkajs's own timeout, so that its error for the request comes first.
  return { apiKey, deadline: Date.now() + Math.max(timeoutMs, wait) + 1000 };
}
