import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Kafka 4's main classes, still in kafka_2.13: the KRaft server and the storage formatter. */
export const KAFKA_MAIN = 'kafka.Kafka';
export const STORAGE_TOOL = 'kafka.tools.StorageTool';

// Kafka 4 logs through log4j2 (log4j 1 configs are ignored): one console appender, stdout goes to the log file.
const LOG4J2_PROPERTIES = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = info
# The request log and the state-change log are noisy at INFO and say nothing a local stack needs.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
`;

/** Writes the log4j2 configuration into dir and returns its path. */
export function writeLog4j2(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'log4j2.properties');
  writeFileSync(file, LOG4J2_PROPERTIES);
  return file;
}

/**
 * JVM options and classpath. `small` is for cluster nodes sharing two cores: single-threaded GC and a capped
 * JIT so three JVMs starting at once do not starve each other.
 */
export function kafkaJvmArgs(libs: string, log4j2: string, heap: string, opts: { small?: boolean } = {}): string[] {
  const sizing = opts.small
    ? [`-Xmx${heap}`, '-Xms64m', '-XX:ParallelGCThreads=1', '-XX:ConcGCThreads=1', '-XX:CICompilerCount=2', '-XX:+ExitOnOutOfMemoryError']
    : [`-Xmx${heap}`, '-Xms256m'];
  return [...sizing, '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${log4j2}`, '-cp', `${libs}/*`];
}

/**
 * A KRaft cluster id as `StorageTool random-uuid` makes it (16 random bytes, base64url, never starting with '-'),
 * without starting a JVM for it.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

const execFileP = promisify(execFile);

const formatArgs = (jvm: string[], props: string, clusterId: string, extra: string[]) => [...jvm, STORAGE_TOOL, 'format', '-t', clusterId, '-c', props, ...extra];

function formatError(props: string, err: unknown): Error {
  const e = err as { stdout?: string | Buffer; stderr?: string | Buffer; message: string };
  // The tool prints the whole broker configuration first (tab-indented): keep only its own lines.
  const out = `${e.stderr ?? ''}\n${e.stdout ?? ''}`.trim().split('\n').filter((l) => !l.startsWith('\t')).slice(-15).join('\n');
  return new Error(`formatting ${props} failed: ${out || e.message}`);
}

/** Formats a node's log directory once (`extra`: e.g. --add-scram records); nodes of a cluster format in parallel. */
export async function formatStorage(jvm: string[], props: string, clusterId: string, extra: string[] = []): Promise<void> {
  try {
    await execFileP('java', formatArgs(jvm, props, clusterId, extra), { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    throw formatError(props, err);
  }
}

export function formatStorageSync(jvm: string[], props: string, clusterId: string, extra: string[] = []): void {
  try {
    execFileSync('java', formatArgs(jvm, props, clusterId, extra), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    throw formatError(props, err);
  }
}
