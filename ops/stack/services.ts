import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokerPropertyLines } from './broker-settings.ts';
import type { StackConfig } from './stack-config.ts';
import { installClickhouse, installKafka, installPostgres, installRegistry } from './install.ts';
import { startDetached } from './processes.ts';
import { formatStorageSync, KAFKA_MAIN, kafkaJvmArgs, newClusterId, writeLog4j2 } from './kafka-jvm.ts';
import { clickhouseHealthy, kafkaHealthy, registryHealthy } from './health.ts';

/** One service of the native stack: how to install it, start it, and ask whether it is healthy. */
export interface Service {
  name: string;
  dir: string;
  /** What `stack down --wipe` deletes. */
  dataDir: string;
  logFile: string;
  pidFile: string;
  endpoint: string;
  install(): void;
  start(): number;
  healthy(): Promise<boolean>;
  startTimeoutMs: number;
}

export function kafkaService(cfg: StackConfig): Service {
  const dir = join(cfg.dir, 'kafka');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'logs', 'server.log');
  // The single broker's address even when the folder is configured as a cluster (stack down still finds it).
  const brokers = [`127.0.0.1:${cfg.kafkaPort}`];
  let libs = '';
  return {
    name: 'kafka',
    dir,
    dataDir,
    logFile,
    pidFile: join(dir, 'kafka.pid'),
    endpoint: brokers.join(','),
    startTimeoutMs: 90_000,
    install() {
      libs = installKafka(cfg);
    },
    start() {
      mkdirSync(join(dir, 'logs'), { recursive: true });
      const props = join(dir, 'server.properties');
      writeFileSync(props, kafkaProperties(cfg, dataDir));
      const jvm = kafkaJvmArgs(libs, writeLog4j2(dir), cfg.kafkaHeap);
      // KRaft needs its log directory formatted with a cluster id once.
      if (!existsSync(join(dataDir, 'meta.properties'))) formatStorageSync(jvm, props, newClusterId());
      return startDetached('java', [...jvm, KAFKA_MAIN, props], { cwd: dir, logFile, pidFile: join(dir, 'kafka.pid') });
    },
    healthy: () => kafkaHealthy(brokers),
  };
}

export function kafkaProperties(cfg: StackConfig, dataDir: string): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${cfg.kafkaControllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${cfg.kafkaPort},CONTROLLER://127.0.0.1:${cfg.kafkaControllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${cfg.kafkaPort}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=8',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=8',
    // Kafka 4 creates the share-group state topic with 3 replicas by default: one broker has one.
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    ...brokerPropertyLines(),
    '',
  ].join('\n');
}

export function registryService(cfg: StackConfig): Service {
  const dir = join(cfg.dir, 'registry');
  const logFile = join(dir, 'logs', 'registry.log');
  const ep = { registryUrl: `http://127.0.0.1:${cfg.registryPort}` };
  let bin = '';
  return {
    name: 'schema-registry',
    dir,
    dataDir: join(dir, 'data'),
    logFile,
    pidFile: join(dir, 'registry.pid'),
    endpoint: ep.registryUrl,
    startTimeoutMs: 30_000,
    install() {
      bin = installRegistry(cfg);
    },
    start() {
      mkdirSync(dir, { recursive: true });
      const conf = join(dir, 'config.yaml');
      writeFileSync(
        conf,
        [
          'server:',
          '  host: "127.0.0.1"',
          `  port: ${cfg.registryPort}`,
          'storage:',
          ...(cfg.registryStorage === 'memory'
            ? ['  type: memory']
            : ['  type: postgresql', '  postgresql:', '    host: 127.0.0.1', `    port: ${cfg.registryStorePort}`, '    database: postgres', '    user: ipt', // trust auth: the password is not checked, but an empty one would break the registry's connection string.
                '    password: ipt', '    ssl_mode: disable']),
          'compatibility:',
          '  default_level: BACKWARD',
          'logging:',
          '  level: warn',
          '  format: json',
          'security:',
          '  auth:',
          '    enabled: false',
          '',
        ].join('\n'),
      );
      return startDetached(bin, ['-config', conf], { cwd: dir, logFile, pidFile: join(dir, 'registry.pid') });
    },
    healthy: () => registryHealthy(ep.registryUrl),
  };
}

export function clickhouseService(cfg: StackConfig): Service {
  const dir = join(cfg.dir, 'clickhouse');
  const logFile = join(dir, 'logs', 'server.log');
  const ep = { clickhouseUrl: `http://127.0.0.1:${cfg.clickhouseHttpPort}` };
  let bin = '';
  return {
    name: 'clickhouse',
    dir,
    dataDir: join(dir, 'data'),
    logFile,
    pidFile: join(dir, 'clickhouse.pid'),
    endpoint: ep.clickhouseUrl,
    startTimeoutMs: 60_000,
    install() {
      bin = installClickhouse();
    },
    start() {
      for (const d of ['data', 'tmp', 'user_files', 'format_schemas', 'logs']) mkdirSync(join(dir, d), { recursive: true });
      writeFileSync(join(dir, 'config.xml'), clickhouseConfig(cfg, dir));
      writeFileSync(join(dir, 'users.xml'), CLICKHOUSE_USERS);
      return startDetached(bin, [`--config-file=${join(dir, 'config.xml')}`], { cwd: dir, logFile: join(dir, 'logs', 'stdout.log'), pidFile: join(dir, 'clickhouse.pid') });
    },
    healthy: () => clickhouseHealthy(ep.clickhouseUrl),
  };
}

// <yandex> is the root element the 18.x releases require; current releases still accept it.
function clickhouseConfig(cfg: StackConfig, dir: string): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>${dir}/logs/server.log</log><errorlog>${dir}/logs/error.log</errorlog><size>100M</size><count>3</count></logger>
  <http_port>${cfg.clickhouseHttpPort}</http_port>
  <tcp_port>${cfg.clickhouseTcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`;
}

const CLICKHOUSE_USERS = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;

/**
 * The registry's schema store: a PostgreSQL cluster of the stack's own, so that schema ids outlive restarts as
 * the records in Kafka that carry them do. PostgreSQL refuses to run as root; as root it runs as `postgres`.
 */
export function registryStoreService(cfg: StackConfig): Service {
  const dir = join(cfg.dir, 'registry-store');
  const root = process.getuid?.() === 0;
  // As root the cluster runs as `postgres`, which may not be able to traverse the checkout's parents (a clone in
  // a 0700 temporary folder, say): its files then live under postgres's home, one cluster per stack folder.
  const pgDir = root ? join(postgresHome(), 'instruct-pt', createHash('sha256').update(cfg.dir).digest('hex').slice(0, 16)) : dir;
  const dataDir = join(pgDir, 'data');
  const socketDir = join(pgDir, 'run');
  const logFile = join(dir, 'logs', 'postgres.log');
  let bin = '';
  const asPostgres = (cmd: string, args: string[]): [string, string[]] => (root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  return {
    name: 'registry-store',
    dir,
    dataDir,
    logFile,
    pidFile: join(dir, 'postgres.pid'),
    endpoint: `postgresql://127.0.0.1:${cfg.registryStorePort}`,
    startTimeoutMs: 30_000,
    install() {
      bin = installPostgres();
    },
    start() {
      for (const d of [dataDir, socketDir, join(dir, 'logs')]) mkdirSync(d, { recursive: true });
      if (root) {
        const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
        const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
        for (const d of [join(postgresHome(), 'instruct-pt'), pgDir, dataDir, socketDir]) chownSync(d, uid, gid);
      }
      if (!existsSync(join(dataDir, 'PG_VERSION'))) {
        const [cmd, args] = asPostgres(join(bin, 'initdb'), ['-D', dataDir, '-U', 'ipt', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
        try {
          execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        } catch (err) {
          const e = err as { stderr?: Buffer; message: string };
          throw new Error(`initdb failed: ${e.stderr?.toString().trim() || e.message}`);
        }
      }
      // The log file is opened here and handed over as stdout/stderr, so `postgres` needs no access to it.
      const [cmd, args] = asPostgres(join(bin, 'postgres'), ['-D', dataDir, '-p', String(cfg.registryStorePort), '-h', '127.0.0.1', '-k', socketDir]);
      return startDetached(cmd, args, { cwd: '/', logFile, pidFile: join(dir, 'postgres.pid') });
    },
    healthy: async () => {
      if (!bin) bin = installPostgres();
      try {
        execFileSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(cfg.registryStorePort), '-U', 'ipt', '-d', 'postgres'], { stdio: 'ignore', timeout: 3000 });
        return true;
      } catch {
        return false;
      }
    },
  };
}

function postgresHome(): string {
  try {
    return execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim().split(':')[5] || '/var/lib/postgresql';
  } catch {
    return '/var/lib/postgresql';
  }
}

export function allServices(cfg: StackConfig): Service[] {
  const store = cfg.registryStorage === 'postgresql' ? [registryStoreService(cfg)] : [];
  return [kafkaService(cfg), ...store, registryService(cfg), clickhouseService(cfg)];
}
