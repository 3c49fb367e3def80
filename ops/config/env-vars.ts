/**
 * Every environment variable instruct-pt reads, for the operations docs: `ipt env --markdown` prints these tables and
 * docs/operations.md holds them between markers, and a test checks both that the docs are the tables printed now and
 * that the variables named here are the ones the code reads (no more, no fewer). The readers validate their values at
 * start-up (`processors/runtime/runtime-config.ts`, `kafka-security.ts`, `service-credentials.ts`, `topics.ts`,
 * `ops/cli/pipeline-options.ts`, `ops/stack/stack-config.ts`).
 */
export interface EnvVar {
  /** One name, or several that go together (ports of one service). */
  names: string[];
  /** As the docs show it: a value in backticks, or words ("unset: …"). */
  default: string;
  meaning: string;
}

export interface EnvGroup {
  title: string;
  vars: EnvVar[];
}

export const ENV_GROUPS: EnvGroup[] = [
  {
    title: 'Connections and credentials',
    vars: [
      { names: ['IPT_KAFKA_BROKERS'], default: '`127.0.0.1:9092`', meaning: "bootstrap brokers, `host:port`, comma-separated (also the trainer's `--brokers` default)" },
      { names: ['IPT_KAFKA_SECURITY_PROTOCOL'], default: '`plaintext`', meaning: '`plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`' },
      { names: ['IPT_KAFKA_SASL_MECHANISM'], default: 'unset', meaning: '`plain`, `scram-sha-256` or `scram-sha-512`; required with the `sasl_*` protocols' },
      { names: ['IPT_KAFKA_SASL_USERNAME'], default: 'unset', meaning: 'SASL user (with the `sasl_*` protocols)' },
      { names: ['IPT_KAFKA_SASL_PASSWORD'], default: 'unset', meaning: 'SASL password (with the `sasl_*` protocols)' },
      { names: ['IPT_KAFKA_SSL_CA_FILE'], default: "unset: the system's CAs", meaning: "PEM file of the CA that signed the brokers' certificates (`ssl`, `sasl_ssl`)" },
      { names: ['IPT_KAFKA_SSL_CERT_FILE'], default: 'unset', meaning: 'PEM client certificate for mutual TLS; goes with `IPT_KAFKA_SSL_KEY_FILE`' },
      { names: ['IPT_KAFKA_SSL_KEY_FILE'], default: 'unset', meaning: 'PEM private key of the client certificate; goes with `IPT_KAFKA_SSL_CERT_FILE`' },
      { names: ['IPT_REGISTRY_URL'], default: '`http://127.0.0.1:8081`', meaning: "schema registry (also the trainer's `--registry` default)" },
      { names: ['IPT_REGISTRY_USERNAME'], default: 'unset', meaning: 'registry basic-auth user; set both or neither' },
      { names: ['IPT_REGISTRY_PASSWORD'], default: 'unset', meaning: 'registry basic-auth password; set both or neither' },
      { names: ['IPT_CLICKHOUSE_URL'], default: '`http://127.0.0.1:8123`', meaning: 'ClickHouse HTTP' },
      { names: ['IPT_CLICKHOUSE_DB'], default: '`instruct_pt`', meaning: 'ClickHouse database (letters, digits and `_`)' },
      { names: ['IPT_CLICKHOUSE_USERNAME'], default: "unset: the server's `default` user", meaning: 'ClickHouse user; set both or neither' },
      { names: ['IPT_CLICKHOUSE_PASSWORD'], default: 'unset', meaning: 'ClickHouse password; set both or neither' },
      { names: ['IPT_LLM_URL'], default: 'unset', meaning: 'LLM base URL(s), comma-separated, when `--llm-url` is not given (`pipeline`, `rounds`, `serve`)' },
      { names: ['IPT_LLM_API_KEY'], default: 'unset, falls back to `OPENAI_API_KEY`', meaning: 'bearer token sent to the LLM servers; the key `ipt serve-llm` requires' },
      { names: ['IPT_API_TOKEN'], default: 'unset: a random token, printed on stderr', meaning: "`ipt serve`'s bearer token for ingest and control (at least 16 characters); `--token` overrides" },
    ],
  },
  {
    title: 'The runtime',
    vars: [
      { names: ['IPT_EXACTLY_ONCE'], default: '`false`', meaning: 'transactions instead of commit-after-ack' },
      { names: ['IPT_INSTANCE_ID'], default: '`<hostname>-0`', meaning: 'distinguishes instances of one processor (transactional ids)' },
      { names: ['IPT_CLIENT_ID'], default: '`instruct-pt`', meaning: 'Kafka client id (commands add a suffix per role)' },
      { names: ['IPT_BATCH_SIZE'], default: '`500`', meaning: 'records per chunk (one produce request)' },
      { names: ['IPT_MAX_INFLIGHT_BATCHES'], default: '`4`', meaning: "chunks' produce requests in flight before a commit (with exactly-once: chunks per transaction)" },
      { names: ['IPT_CONCURRENCY'], default: '`64`', meaning: 'handler calls in flight per chunk' },
      { names: ['IPT_PARTITIONS_CONCURRENTLY'], default: '`1`', meaning: 'partitions processed in parallel by one process (must be 1 with exactly-once)' },
      { names: ['IPT_SESSION_TIMEOUT_MS'], default: '`30000` (at least 6000)', meaning: 'consumer group session; heartbeats every tenth of it, also mid-chunk' },
      { names: ['IPT_SHUTDOWN_TIMEOUT_MS'], default: '`30000`', meaning: 'how long a graceful stop may take before the process exits 1' },
      { names: ['IPT_TOPIC_REPLICATION_FACTOR'], default: '`min(3, brokers)`', meaning: 'replicas of the topics a process creates (at most the number of brokers)' },
      { names: ['IPT_METRICS_PORT'], default: 'unset', meaning: 'serve `/metrics`, `/healthz`, `/readyz` on this port' },
      { names: ['IPT_LOG_LEVEL'], default: '`info` for long-running processes, `warn` for one-shot commands', meaning: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`' },
      { names: ['IPT_LOG_FORMAT'], default: 'unset: `pretty` when stderr is a terminal, else `json`', meaning: '`json` (one JSON line per entry, for collectors) or `pretty` (for people)' },
      { names: ['IPT_DEBUG'], default: 'unset', meaning: "when set, the CLI prints an unreachable service's full error stack instead of a one-line hint" },
    ],
  },
  {
    title: 'The pipeline and its limits',
    vars: [
      { names: ['IPT_TOPIC_PREFIX'], default: '`ipt`', meaning: "prefix of the pipeline's topics and consumer groups (`--prefix`)" },
      { names: ['IPT_TOPOLOGY'], default: '`staged`', meaning: '`staged` or `fused` (`--topology`)' },
      { names: ['IPT_LLM_DEADLINE_MS'], default: '`600000`', meaning: 'how long one text may wait for the LLM, retries and outages included (`--llm-deadline-ms`)' },
      { names: ['IPT_CLICKHOUSE_OUTAGE_MS'], default: '`600000`', meaning: 'how long the ClickHouse sink holds rows through an outage before failing them' },
      { names: ['IPT_REGISTRY_OUTAGE_MS'], default: '`600000`', meaning: 'how long schema look-ups and registrations wait for the registry' },
      { names: ['IPT_MAX_TEXT_BYTES'], default: '`1048576`', meaning: 'the largest raw text accepted (files, stdin, HTTP); larger ones are rejected by line or index' },
      { names: ['IPT_FUSED_MAX_HELD'], default: '`100000`', meaning: "collections the fused stage's round hand-over keeps in memory; older ones go to a spool on disk" },
      { names: ['IPT_FUSED_SPOOL_DIR'], default: "the system's temporary folder", meaning: "where the fused stage spools hand-over collections beyond `IPT_FUSED_MAX_HELD` (checked writable at start-up; the files are unlinked as they are made)" },
      { names: ['IPT_FUSED_READ_BACK_MAX'], default: '`20000`', meaning: 'collections (and raw texts) a read-back from the topics holds ahead, after a restart or a rebalance' },
      { names: ['IPT_MAX_RUN_IDS'], default: '`1000000`', meaning: 'ids remembered per open run by `ipt serve`, so an id is ingested once' },
    ],
  },
  {
    title: 'The local stack and tooling',
    vars: [
      { names: ['IPT_STACK_DIR'], default: '`.stack`', meaning: "where the local stack keeps data, logs, binaries, models and the trainer's venv" },
      { names: ['IPT_STACK'], default: 'unset', meaning: '`native`: tests, benchmarks, `demo` and `smoke` use the native stack even when Docker is reachable' },
      { names: ['IPT_KAFKA_PORT', 'IPT_KAFKA_CONTROLLER_PORT'], default: '`9092`, `9093`', meaning: "the local Kafka's client and controller ports" },
      { names: ['IPT_KAFKA_INTERNAL_PORT'], default: '`9094`', meaning: 'the inter-broker listener of a local cluster (multi-node or `--secure`)' },
      { names: ['IPT_KAFKA_HEAP'], default: '`1g`, `384m` per node in a cluster', meaning: "the local Kafka's JVM heap (a JVM size: `384m`, `1g`)" },
      { names: ['IPT_STACK_BROKERS'], default: "`1`, or what the folder's cluster has", meaning: 'Kafka nodes of the local stack, 1–5 (`--brokers`)' },
      { names: ['IPT_STACK_SECURE'], default: "`false`, or what the folder's cluster has", meaning: 'SASL_SSL client listener, TLS between nodes, ACLs (`--secure`)' },
      { names: ['IPT_STACK_NETNS'], default: '`auto`', meaning: 'cluster nodes in network namespaces of their own: `auto` (when usable), `on` (required) or `off` (loopback ports)' },
      { names: ['IPT_STACK_SUBNET'], default: 'derived from the stack folder', meaning: "first three octets of the cluster's /24 in namespaces, e.g. `10.77.0`" },
      { names: ['IPT_STACK_SERVICES'], default: '`all`', meaning: 'which services `stack up` starts: a comma-separated list of `kafka`, `registry`, `clickhouse`' },
      { names: ['IPT_REGISTRY_PORT'], default: '`8081`', meaning: "the local registry's port" },
      { names: ['IPT_REGISTRY_STORAGE'], default: '`postgresql`', meaning: 'where the local registry keeps schemas: `postgresql` or `memory`' },
      { names: ['IPT_REGISTRY_STORE_PORT'], default: '`5433`', meaning: "the registry's PostgreSQL port" },
      { names: ['IPT_CLICKHOUSE_HTTP_PORT', 'IPT_CLICKHOUSE_TCP_PORT'], default: '`8123`, `9000`', meaning: "the local ClickHouse's ports" },
      { names: ['IPT_PYTHON'], default: '`python3`', meaning: "the Python that downloads the model wheels and makes the trainer's venv" },
      { names: ['IPT_BENCH_SPANS'], default: 'unset', meaning: "`ipt bench pipeline` also prints each side's process CPU time" },
      { names: ['IPT_MEMORY_PROBE'], default: 'unset', meaning: '`ipt bench memory` sets it for the processes it measures: the file their memory probe writes' },
      { names: ['IPT_CHROMIUM'], default: 'unset: installed with `apt-get`', meaning: 'Chromium binary for the dashboard test' },
      { names: ['IPT_TEST_REPORT'], default: 'unset', meaning: "also write vitest's JSON report to this path (`.ci/run` uses it)" },
      { names: ['IPT_SCREENSHOT_DIR'], default: "the test's temporary folder", meaning: 'where the dashboard test saves its screenshot' },
      { names: ['IPT_CLUSTER_TEST_DIR', 'IPT_CLUSTER_TEST_PORT'], default: 'a fixed folder under the temporary directory, `39092`', meaning: 'where the local-cluster test keeps its 3-node secure cluster, and its first port' },
      { names: ['IPT_CLUSTER_KEEP'], default: 'unset', meaning: "leave the local-cluster test's cluster running for the next run" },
    ],
  },
];

/** The variables' names, one by one. */
export const ENV_NAMES: string[] = ENV_GROUPS.flatMap((g) => g.vars.flatMap((v) => v.names));

/** The docs' tables: a heading and a table per group. */
export function envTablesMarkdown(): string {
  const parts: string[] = [];
  for (const g of ENV_GROUPS) {
    parts.push(`### ${g.title}`, '', '| variable | default | meaning |', '|---|---|---|');
    for (const v of g.vars) parts.push(`| ${v.names.map((n) => `\`${n}\``).join(', ')} | ${v.default} | ${v.meaning} |`);
    parts.push('');
  }
  return parts.join('\n');
}

/** Plain text for a terminal: a block per group, a line per variable. */
export function envTablesText(): string {
  const plain = (s: string) => s.replace(/`/g, '');
  const width = Math.max(...ENV_GROUPS.flatMap((g) => g.vars.map((v) => v.names.join(', ').length)));
  return ENV_GROUPS.map((g) => [`${g.title}:`, ...g.vars.map((v) => `  ${v.names.join(', ').padEnd(width)}  ${plain(v.meaning)} (default: ${plain(v.default)})`)].join('\n')).join('\n\n') + '\n';
}
