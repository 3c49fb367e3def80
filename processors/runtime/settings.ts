import { z } from 'zod';
import { ConfigError } from './config-error.ts';
import { DEFAULT_MAX_TEXT_BYTES } from '../templating/text-checks.ts';

/**
 * Every environment variable instruct-pt reads, defined once: its type and validation (a zod schema over the raw
 * string), its default, and what it does. The readers take their values from here (`setting`), so a bad value is
 * refused the same way everywhere — at start-up, naming the variable (the CLI exits 2) — and the operations docs'
 * tables and the commands' `--help` are printed from the same definitions (`ipt env`, ops/config/env-vars.ts). A
 * test checks that no product code reads an `IPT_` variable any other way.
 */

export const GROUPS = {
  connections: 'Connections and credentials',
  runtime: 'The runtime',
  pipeline: 'The pipeline and its limits',
  stack: 'The local stack and tooling',
} as const;
export type GroupKey = keyof typeof GROUPS;

export interface SettingDef<T> {
  group: GroupKey;
  /** Parses the raw value (never empty: an empty variable is the same as an unset one). */
  schema: z.ZodType<T, string>;
  /** The value when unset; undefined where the reader works the default out (named in `shown`). */
  fallback: T | undefined;
  /** The default as the docs show it: a value in backticks, or words ("unset: …"). */
  shown: string;
  meaning: string;
  /** A secret: a refused value is not repeated in the error. */
  secret?: boolean;
}

// ---- value types: each a schema from the raw string, with the message a refused value gets ----

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A whole number from min to max (decimal digits only: "4k", "1e3" and "-1" are refused). */
const whole = (min: number, max = Number.MAX_SAFE_INTEGER, unit = '') =>
  z
    .string()
    .regex(/^\d+$/, `expected a whole number${unit} from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `expected a whole number${unit} from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}`);

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off)$/i;
const bool = () =>
  z
    .string()
    .refine((s) => TRUE.test(s) || FALSE.test(s), 'expected true or false')
    .transform((s) => TRUE.test(s));

const oneOf = <const T extends readonly [string, ...string[]]>(values: T, fold = false) =>
  z
    .string()
    .transform((s) => (fold ? s.toLowerCase() : s))
    .refine((s): s is T[number] => (values as readonly string[]).includes(s), values.length === 2 ? `expected ${values[0]} or ${values[1]}` : `expected one of ${values.join(', ')}`)
    .transform((s) => s as T[number]);

const url = () => z.string().refine((s) => URL.canParse(s), 'not a URL');
const text = () => z.string();
const hostPort = /^[^:\s]+:\d+$/;
const brokerList = () =>
  z
    .string()
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
    .superRefine((bs, ctx) => {
      if (bs.length === 0) ctx.addIssue({ code: 'custom', message: 'expected host:port, comma-separated' });
      for (const b of bs) if (!hostPort.test(b)) ctx.addIssue({ code: 'custom', message: `"${b}" is not host:port` });
    });
const urlList = () =>
  z
    .string()
    .transform((s) => s.split(',').map((u) => u.trim()).filter(Boolean))
    .superRefine((us, ctx) => {
      for (const u of us) if (!URL.canParse(u)) ctx.addIssue({ code: 'custom', message: `"${u}" is not a URL` });
    });
const port = () => whole(1, 65535);
const identifier = () => z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected letters, digits and _ (not a digit first)');

const def = <T>(group: GroupKey, schema: z.ZodType<T, string>, fallback: T, shown: string, meaning: string, secret = false): SettingDef<T> & { fallback: T } => ({ group, schema, fallback, shown, meaning, secret });
const opt = <T>(group: GroupKey, schema: z.ZodType<T, string>, shown: string, meaning: string, secret = false): SettingDef<T> & { fallback: undefined } => ({ group, schema, fallback: undefined, shown, meaning, secret });

/** The services `stack up` can start; `registry` brings its PostgreSQL store along. */
export const STACK_SERVICE_NAMES = ['kafka', 'registry', 'clickhouse'] as const;
export type StackServiceName = (typeof STACK_SERVICE_NAMES)[number];
/** Node counts a local cluster may have: at least one, and few enough for a 2-core machine. */
export const MAX_STACK_BROKERS = 5;
const stackServices = () =>
  z.string().transform((raw, ctx): StackServiceName[] => {
    if (raw === 'all') return [...STACK_SERVICE_NAMES];
    const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0 || names.some((n) => !(STACK_SERVICE_NAMES as readonly string[]).includes(n))) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${STACK_SERVICE_NAMES.join(', ')} (or all)` });
      return z.NEVER;
    }
    return STACK_SERVICE_NAMES.filter((n) => names.includes(n));
  });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const SETTINGS = {
  // Connections and credentials
  IPT_KAFKA_BROKERS: def('connections', brokerList(), ['127.0.0.1:9092'], '`127.0.0.1:9092`', "bootstrap brokers, `host:port`, comma-separated (also the trainer's `--brokers` default)"),
  IPT_KAFKA_SECURITY_PROTOCOL: def('connections', oneOf(['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'], true), 'plaintext', '`plaintext`', '`plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`'),
  IPT_KAFKA_SASL_MECHANISM: opt('connections', oneOf(['plain', 'scram-sha-256', 'scram-sha-512'], true), 'unset', '`plain`, `scram-sha-256` or `scram-sha-512`; required with the `sasl_*` protocols'),
  IPT_KAFKA_SASL_USERNAME: opt('connections', text(), 'unset', 'SASL user (with the `sasl_*` protocols)'),
  IPT_KAFKA_SASL_PASSWORD: opt('connections', text(), 'unset', 'SASL password (with the `sasl_*` protocols)', true),
  IPT_KAFKA_SSL_CA_FILE: opt('connections', text(), "unset: the system's CAs", "PEM file of the CA that signed the brokers' certificates (`ssl`, `sasl_ssl`)"),
  IPT_KAFKA_SSL_CERT_FILE: opt('connections', text(), 'unset', 'PEM client certificate for mutual TLS; goes with `IPT_KAFKA_SSL_KEY_FILE`'),
  IPT_KAFKA_SSL_KEY_FILE: opt('connections', text(), 'unset', 'PEM private key of the client certificate; goes with `IPT_KAFKA_SSL_CERT_FILE`'),
  IPT_REGISTRY_URL: def('connections', url(), 'http://127.0.0.1:8081', '`http://127.0.0.1:8081`', "schema registry (also the trainer's `--registry` default)"),
  IPT_REGISTRY_USERNAME: opt('connections', text(), 'unset', 'registry basic-auth user; set both or neither'),
  IPT_REGISTRY_PASSWORD: opt('connections', text(), 'unset', 'registry basic-auth password; set both or neither', true),
  IPT_CLICKHOUSE_URL: def('connections', url(), 'http://127.0.0.1:8123', '`http://127.0.0.1:8123`', 'ClickHouse HTTP'),
  IPT_CLICKHOUSE_DB: def('connections', identifier(), 'instruct_pt', '`instruct_pt`', 'ClickHouse database (letters, digits and `_`)'),
  IPT_CLICKHOUSE_USERNAME: opt('connections', text(), "unset: the server's `default` user", 'ClickHouse user; set both or neither'),
  IPT_CLICKHOUSE_PASSWORD: opt('connections', text(), 'unset', 'ClickHouse password; set both or neither', true),
  IPT_LLM_URL: def('connections', urlList(), [] as string[], 'unset', 'LLM base URL(s), comma-separated, when `--llm-url` is not given (`pipeline`, `rounds`, `serve`)'),
  IPT_LLM_API_KEY: opt('connections', text(), 'unset, falls back to `OPENAI_API_KEY`', 'bearer token sent to the LLM servers; the key `ipt serve-llm` requires', true),
  IPT_API_TOKEN: opt('connections', z.string().min(16, 'expected at least 16 characters'), 'unset: a random token, printed on stderr', "`ipt serve`'s bearer token for ingest and control (at least 16 characters); `--token` overrides", true),

  // The runtime
  IPT_EXACTLY_ONCE: def('runtime', bool(), false, '`false`', 'transactions instead of commit-after-ack'),
  IPT_INSTANCE_ID: opt('runtime', text(), '`<hostname>-0`', 'distinguishes instances of one processor (transactional ids)'),
  IPT_CLIENT_ID: def('runtime', text(), 'instruct-pt', '`instruct-pt`', 'Kafka client id (commands add a suffix per role)'),
  IPT_BATCH_SIZE: def('runtime', whole(1), 500, '`500`', 'records per chunk (one produce request)'),
  IPT_MAX_INFLIGHT_BATCHES: def('runtime', whole(1), 4, '`4`', "chunks' produce requests in flight before a commit (with exactly-once: chunks per transaction)"),
  IPT_CONCURRENCY: def('runtime', whole(1), 64, '`64`', 'handler calls in flight per chunk'),
  IPT_PARTITIONS_CONCURRENTLY: def('runtime', whole(1), 1, '`1`', 'partitions processed in parallel by one process (must be 1 with exactly-once)'),
  IPT_SESSION_TIMEOUT_MS: def('runtime', whole(6000), 30_000, '`30000` (at least 6000)', 'consumer group session; heartbeats every tenth of it, also mid-chunk'),
  IPT_SHUTDOWN_TIMEOUT_MS: def('runtime', whole(1, MAX_TIMEOUT_MS, ' of milliseconds'), 30_000, '`30000`', 'how long a graceful stop may take before the process exits 1'),
  IPT_TOPIC_REPLICATION_FACTOR: opt('runtime', whole(1), '`min(3, brokers)`', 'replicas of the topics a process creates (at most the number of brokers)'),
  IPT_METRICS_PORT: opt('runtime', whole(0, 65535), 'unset', 'serve `/metrics`, `/healthz`, `/readyz` on this port'),
  IPT_LOG_LEVEL: opt('runtime', oneOf(LOG_LEVELS), '`info` for long-running processes, `warn` for one-shot commands', 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`'),
  IPT_LOG_FORMAT: opt('runtime', oneOf(['json', 'pretty']), 'unset: `pretty` when stderr is a terminal, else `json`', '`json` (one JSON line per entry, for collectors) or `pretty` (for people)'),
  IPT_DEBUG: def('runtime', z.string().transform(() => true), false, 'unset', 'when set, the CLI prints every error with its stack (as `--debug` does) instead of one line naming what to fix'),

  // The pipeline and its limits
  IPT_TOPIC_PREFIX: def('pipeline', z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-"'), 'ipt', '`ipt`', "prefix of the pipeline's topics and consumer groups (`--prefix`)"),
  IPT_TOPOLOGY: def('pipeline', oneOf(['staged', 'fused']), 'staged', '`staged`', '`staged` or `fused` (`--topology`)'),
  IPT_LLM_DEADLINE_MS: def('pipeline', whole(1, Number.MAX_SAFE_INTEGER, ' of milliseconds'), 600_000, '`600000`', 'how long one text may wait for the LLM, retries and outages included (`--llm-deadline-ms`)'),
  IPT_JUDGE_URL: def('pipeline', urlList(), [] as string[], 'unset: no judge stage', "the judge stage's OpenAI-compatible base URL(s), comma-separated (`--judge-url`); set, the pipeline judges a sample of its pairs as they are synthesized"),
  IPT_JUDGE_MODEL: def('pipeline', text(), 'judge', '`judge`', 'the model name the judge stage sends (`--judge-model`)'),
  IPT_JUDGE_GUIDED: def('pipeline', oneOf(['gbnf', 'json', 'off']), 'gbnf', '`gbnf`', "how the judge stage guides its judge's answer: a GBNF grammar, a JSON schema, or not at all (`--judge-guided`)"),
  IPT_JUDGE_PER_ROUND: def('pipeline', whole(1), 500, '`500`', 'pairs the judge stage judges per run and round at most (`--judge-per-round`)'),
  IPT_CLICKHOUSE_OUTAGE_MS: def('pipeline', whole(0, Number.MAX_SAFE_INTEGER, ' of milliseconds'), 600_000, '`600000`', 'how long the ClickHouse sink holds rows through an outage before failing them'),
  IPT_REGISTRY_OUTAGE_MS: def('pipeline', whole(0, Number.MAX_SAFE_INTEGER, ' of milliseconds'), 600_000, '`600000`', 'how long schema look-ups and registrations wait for the registry'),
  IPT_MAX_TEXT_BYTES: def('pipeline', whole(1, Number.MAX_SAFE_INTEGER, ' of bytes'), DEFAULT_MAX_TEXT_BYTES, `\`${DEFAULT_MAX_TEXT_BYTES}\``, 'the largest raw text accepted (files, stdin, HTTP); larger ones are rejected by line or index'),
  IPT_FUSED_MAX_HELD: def('pipeline', whole(1), 100_000, '`100000`', "collections the fused stage's round hand-over keeps in memory; older ones go to a spool on disk"),
  IPT_FUSED_SPOOL_DIR: opt('pipeline', text(), "the system's temporary folder", "where the fused stage spools hand-over collections beyond `IPT_FUSED_MAX_HELD` (checked writable at start-up; the files are unlinked as they are made)"),
  IPT_FUSED_READ_BACK_MAX: def('pipeline', whole(0), 20_000, '`20000`', 'collections (and raw texts) a read-back from the topics holds ahead, after a restart or a rebalance'),
  IPT_MAX_RUN_IDS: def('pipeline', whole(1), 1_000_000, '`1000000`', 'ids remembered per open run by `ipt serve`, so an id is ingested once'),

  // The local stack and tooling
  IPT_STACK_DIR: def('stack', text(), '.stack', '`.stack`', "where the local stack keeps data, logs, binaries, models and the trainer's venv"),
  IPT_STACK: opt('stack', oneOf(['native']), 'unset', '`native`: tests, benchmarks, `demo` and `smoke` use the native stack even when Docker is reachable'),
  IPT_KAFKA_PORT: def('stack', port(), 9092, '`9092`', "the local Kafka's client port"),
  IPT_KAFKA_CONTROLLER_PORT: def('stack', port(), 9093, '`9093`', "the local Kafka's controller port"),
  IPT_KAFKA_INTERNAL_PORT: def('stack', port(), 9094, '`9094`', 'the inter-broker listener of a local cluster (multi-node or `--secure`)'),
  IPT_KAFKA_HEAP: opt('stack', z.string().regex(/^[1-9]\d*[kmg]$/i, 'expected a JVM size such as 384m or 1g'), '`1g`, `384m` per node in a cluster', "the local Kafka's JVM heap (a JVM size: `384m`, `1g`)"),
  IPT_STACK_BROKERS: opt('stack', whole(1, MAX_STACK_BROKERS, ' of nodes'), "`1`, or what the folder's cluster has", 'Kafka nodes of the local stack, 1–5 (`--brokers`)'),
  IPT_STACK_SECURE: opt('stack', bool(), "`false`, or what the folder's cluster has", 'SASL_SSL client listener, TLS between nodes, ACLs (`--secure`)'),
  IPT_STACK_NETNS: def('stack', oneOf(['auto', 'on', 'off']), 'auto', '`auto`', 'cluster nodes in network namespaces of their own: `auto` (when usable), `on` (required) or `off` (loopback ports)'),
  IPT_STACK_SUBNET: opt(
    'stack',
    z.string().refine((s) => {
      const o = s.split('.');
      return o.length === 3 && o.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255);
    }, 'expected the first three octets of a /24, e.g. 10.77.0'),
    'derived from the stack folder',
    "first three octets of the cluster's /24 in namespaces, e.g. `10.77.0`",
  ),
  IPT_STACK_SERVICES: def('stack', stackServices(), [...STACK_SERVICE_NAMES] as StackServiceName[], '`all`', 'which services `stack up` starts: a comma-separated list of `kafka`, `registry`, `clickhouse`'),
  IPT_REGISTRY_PORT: def('stack', port(), 8081, '`8081`', "the local registry's port"),
  IPT_REGISTRY_STORAGE: def('stack', oneOf(['postgresql', 'memory']), 'postgresql', '`postgresql`', 'where the local registry keeps schemas: `postgresql` or `memory`'),
  IPT_REGISTRY_STORE_PORT: def('stack', port(), 5433, '`5433`', "the registry's PostgreSQL port"),
  IPT_CLICKHOUSE_HTTP_PORT: def('stack', port(), 8123, '`8123`', "the local ClickHouse's HTTP port"),
  IPT_CLICKHOUSE_TCP_PORT: def('stack', port(), 9000, '`9000`', "the local ClickHouse's native port"),
  IPT_PYTHON: def('stack', text(), 'python3', '`python3`', "the Python that downloads the model wheels and makes the trainer's venv"),
  IPT_BENCH_SPANS: def('stack', z.string().transform(() => true), false, 'unset', "`ipt bench runtime` and `pipeline` also print each side's process CPU time and how busy its event loop was"),
  IPT_BENCH_PROFILE: opt('stack', text(), 'unset', "`ipt bench runtime` and `pipeline` write a CPU profile of each side's measured span to this folder (`<side>-<run>.cpuprofile`)"),
  IPT_MEMORY_PROBE: opt('stack', text(), 'unset', '`ipt bench memory` sets it for the processes it measures: the file their memory probe writes'),
  IPT_CHROMIUM: opt('stack', text(), 'unset: installed with `apt-get`', 'Chromium binary for the dashboard test'),
  IPT_TEST_REPORT: opt('stack', text(), 'unset', "also write vitest's JSON report to this path (`.ci/run` uses it)"),
  IPT_SCREENSHOT_DIR: opt('stack', text(), "the test's temporary folder", 'where the dashboard test saves its screenshot'),
  IPT_CLUSTER_TEST_DIR: opt('stack', text(), 'a fixed folder under the temporary directory', "where the local-cluster test keeps its 3-node secure cluster"),
  IPT_CLUSTER_TEST_PORT: def('stack', port(), 29092, '`29092`', "the local-cluster test's first port"),
  IPT_CLUSTER_KEEP: def('stack', z.string().transform(() => true), false, 'unset', "leave the local-cluster test's cluster running for the next run"),
} satisfies Record<string, SettingDef<unknown>>;

export type SettingName = keyof typeof SETTINGS;
type Value<N extends SettingName> = (typeof SETTINGS)[N] extends SettingDef<infer T> ? T : never;
/** A variable's parsed type (its schema's output). */
export type SettingValue<N extends SettingName> = Value<N>;
type Fallback<N extends SettingName> = (typeof SETTINGS)[N]['fallback'];

/**
 * A variable's value from `env`: its default when unset or empty, else the raw value parsed by its schema. A value
 * the schema refuses is a ConfigError naming the variable (and the value, unless it is a secret).
 */
export function setting<N extends SettingName>(name: N, env: NodeJS.ProcessEnv = process.env): Value<N> | Fallback<N> {
  const d = SETTINGS[name] as SettingDef<Value<N>>;
  const raw = env[name];
  if (raw === undefined || raw === '') return d.fallback as Fallback<N>;
  const r = d.schema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${d.secret ? name : `${name}=${raw}`}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}

/**
 * A flag that stands for a setting (`--prefix` for IPT_TOPIC_PREFIX): the flag's value when given, parsed by the
 * same schema (a refused value names the flag), else the variable's value or default.
 */
export function flagOrSetting<N extends SettingName>(name: N, flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv = process.env): Value<N> | Fallback<N> {
  if (flag === undefined) return setting(name, env);
  const d = SETTINGS[name] as SettingDef<Value<N>>;
  const r = d.schema.safeParse(flag);
  if (!r.success) throw new ConfigError(`--${flagName}${d.secret ? '' : ` ${flag}`}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}

/** Whether the variable is set (not empty): for settings that only make sense together. */
export const isSet = (name: SettingName, env: NodeJS.ProcessEnv = process.env): boolean => env[name] !== undefined && env[name] !== '';

/**
 * The variables a command reads, checked at once before it does anything (the first refused value is a ConfigError
 * naming it), so a mistake in a setting it reads late is not found halfway through its work. `names` are the ones to
 * check: a variable whose flag the command was given is left out, as the flag overrides it.
 */
export function checkSettings(names: Iterable<SettingName>, env: NodeJS.ProcessEnv = process.env): void {
  for (const name of names) setting(name, env);
}

/** The variables' names, in the catalog's order. */
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];
