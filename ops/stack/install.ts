import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import type { StackConfig } from './stack-config.ts';
import { packagePath } from '../../processors/runtime/package-root.ts';


function run(cmd: string, args: string[], what: string, env?: NodeJS.ProcessEnv, cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`installing ${what} failed: ${cmd} ${args.join(' ')}\n${(e.stderr || e.stdout || e.message).slice(-3000)}`);
  }
}

export function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Kafka broker's classpath: kafka_2.13 and its runtime dependencies from Maven Central, resolved by Maven (cached
 * in ~/.m2), with log4j2's slf4j binding. A folder without that binding (an older resolution) is resolved again.
 */
export function installKafka(cfg: StackConfig): string {
  const libs = join(cfg.dir, 'kafka', `libs-${cfg.kafkaVersion}`);
  const complete = () => ['kafka_2.13-', 'log4j-slf4j-impl-'].every((p) => readdirSync(libs).some((f) => f.startsWith(p)));
  if (existsSync(libs) && complete()) return libs;
  if (!which('java')) throw new Error('installing Kafka needs Java 17 (apt-get install openjdk-17-jre-headless)');
  if (!which('mvn')) throw new Error('installing Kafka needs Maven (apt-get install maven)');
  mkdirSync(libs, { recursive: true });
  run('mvn', ['-q', '-B', '-f', packagePath('ops', 'stack', 'kafka', 'pom.xml'), `-Dkafka.version=${cfg.kafkaVersion}`, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], 'Apache Kafka jars');
  return libs;
}

/** The AxonOps schema registry (Confluent REST API), built from its Go module at a pinned version. */
export function installRegistry(cfg: StackConfig): string {
  const bin = join(cfg.dir, 'bin', 'schema-registry');
  if (existsSync(bin)) return bin;
  if (!which('go')) throw new Error('installing the schema registry needs Go (apt-get install golang)');
  mkdirSync(dirname(bin), { recursive: true });
  // `go install mod@version` consults the module's version list, which the proxy may refuse; download the
  // pinned version and build it from the module cache instead.
  const spec = `${cfg.registryModule}@${cfg.registryVersion}`;
  const info = JSON.parse(run('go', ['mod', 'download', '-json', spec], 'the schema registry module')) as { Dir: string };
  run('go', ['build', '-o', resolve(bin), './cmd/schema-registry'], 'the schema registry', { GOFLAGS: '-mod=mod', CGO_ENABLED: '0' }, info.Dir);
  return bin;
}

/** ClickHouse from the distribution's packages. */
export function installClickhouse(): string {
  const found = which('clickhouse-server');
  if (found) return found;
  if (!which('apt-get')) throw new Error('clickhouse-server is not installed and apt-get is not available to install it');
  run('apt-get', ['update', '-q'], 'package lists');
  run('apt-get', ['install', '-y', '-q', 'clickhouse-server', 'clickhouse-client'], 'clickhouse-server', { DEBIAN_FRONTEND: 'noninteractive' });
  const installed = which('clickhouse-server');
  if (!installed) throw new Error('apt-get installed clickhouse-server but it is not on PATH');
  return installed;
}

/** Headless Chromium for the dashboard's browser test, from the distribution's packages. */
export function installChromium(): string {
  const found = which('chromium');
  if (found) return found;
  if (!which('apt-get')) throw new Error('Chromium is not installed and apt-get is not available to install it (set IPT_CHROMIUM to a Chromium binary)');
  run('apt-get', ['update', '-q'], 'package lists');
  run('apt-get', ['install', '-y', '-q', 'chromium'], 'chromium', { DEBIAN_FRONTEND: 'noninteractive' });
  const installed = which('chromium');
  if (!installed) throw new Error('apt-get installed chromium but it is not on PATH');
  return installed;
}

/** PostgreSQL's server binaries (initdb, postgres, pg_isready) from the distribution's packages. */
export function installPostgres(): string {
  const find = () => {
    try {
      return execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1'], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const found = find();
  if (found) return found;
  if (!which('apt-get')) throw new Error('PostgreSQL is not installed and apt-get is not available to install it');
  run('apt-get', ['update', '-q'], 'package lists');
  run('apt-get', ['install', '-y', '-q', 'postgresql'], 'postgresql', { DEBIAN_FRONTEND: 'noninteractive' });
  const installed = find();
  if (!installed) throw new Error('apt-get installed postgresql but its server binaries were not found under /usr/lib/postgresql');
  return installed;
}
