import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, logLevel, Partitioners, ResourcePatternTypes, type Kafka } from 'kafkajs';
import { killNode, startNode } from '../../ops/stack/cluster.ts';
import { startSecureCluster, type ClusterHarness } from './cluster-harness.ts';
import { cannedServer, tmp, writeCorpus } from './pipeline-harness.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { rawTextMessages, sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { describeMismatch, ensureTopics } from '../../processors/runtime/topics.ts';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import { pipelineTopics, stageGroup, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { clusterLayout } from '../../ops/stack/cluster-layout.ts';
import { hostNamespace } from '../../ops/stack/netns.ts';
import { relayUrls, type TcpRelay } from '../../ops/chaos/relay.ts';
import { StageProcess } from '../../ops/chaos/stage-process.ts';
import { waitForGroup, type GroupMember } from '../../ops/bench/group-members.ts';

// instruct-pt on the Kafka its users run: three KRaft nodes, SASL_SSL + SCRAM-SHA-512 with a CA of the stack's own,
// StandardAuthorizer with no access unless an ACL grants it. The registry and ClickHouse are the shared stack's.

let cluster: ClusterHarness;
let llm: RecordedCompletionsServer;
const log = (l: string) => process.stderr.write(`[secure-cluster] ${l}\n`);

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs the CLI with only the given Kafka settings (none inherited), the shared registry and ClickHouse. */
function ipt(args: string[], kafkaEnv: Record<string, string>, extra: Record<string, string> = {}, timeoutMs = 240_000): Promise<Ran> & { pid: number } {
  const stack = inject('stack');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, IPT_REGISTRY_URL: stack.registryUrl, IPT_CLICKHOUSE_URL: stack.clickhouseUrl, IPT_LOG_LEVEL: 'warn', ...kafkaEnv, ...extra };
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Ran>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    }),
  );
  return Object.assign(done, { pid: child.pid! });
}

const lastJson = <T>(out: string): T => JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as T;

async function withAdmin<T>(kafka: Kafka, f: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

type Grant = 'topic' | 'topic-create' | 'group' | 'transactional-id';

/** The ACLs docs/security.md lists for a prefix (nothing on the cluster), less the ones left out. */
function acls(prefix: string, principal: string, leaveOut: Grant[] = []) {
  const entry = (resourceType: AclResourceTypes, resourceName: string, resourcePatternType: ResourcePatternTypes, operation: AclOperationTypes) => ({
    resourceType,
    resourceName,
    resourcePatternType,
    principal,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  });
  const out = [];
  const topicOps = [AclOperationTypes.DESCRIBE, AclOperationTypes.DESCRIBE_CONFIGS, AclOperationTypes.READ, AclOperationTypes.WRITE];
  if (!leaveOut.includes('topic')) for (const op of topicOps) out.push(entry(AclResourceTypes.TOPIC, prefix, ResourcePatternTypes.PREFIXED, op));
  if (!leaveOut.includes('topic-create')) out.push(entry(AclResourceTypes.TOPIC, prefix, ResourcePatternTypes.PREFIXED, AclOperationTypes.CREATE));
  if (!leaveOut.includes('group')) for (const op of [AclOperationTypes.READ, AclOperationTypes.DESCRIBE]) out.push(entry(AclResourceTypes.GROUP, prefix, ResourcePatternTypes.PREFIXED, op));
  if (!leaveOut.includes('transactional-id')) for (const op of [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE]) out.push(entry(AclResourceTypes.TRANSACTIONAL_ID, prefix, ResourcePatternTypes.PREFIXED, op));
  return out;
}

async function grant(prefix: string, leaveOut: Grant[] = []): Promise<void> {
  await withAdmin(cluster.kafka(cluster.adminEnv), (a) => a.createAcls({ acl: acls(prefix, `User:${cluster.appEnv.IPT_KAFKA_SASL_USERNAME}`, leaveOut) }));
}

beforeAll(async () => {
  cluster = await startSecureCluster({ log });
  log(`3 nodes (${cluster.net}) ready in ${cluster.startupSeconds.toFixed(1)} s: ${cluster.brokers.join(', ')}`);
  llm = await cannedServer();
}, 300_000);

afterAll(async () => {
  await llm?.stop();
  // Three JVMs would otherwise compete with the rest of the suite for the machine's two cores.
  await cluster?.stop();
}, 120_000);

describe('a secured, replicated Kafka 4 cluster', () => {
  it('ipt smoke over SASL_SSL + SCRAM-SHA-512: every record through once, on topics with replication 3', async () => {
    const r = await ipt(['smoke', '--records', '300', '--json'], cluster.adminEnv);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<{ runId: string; delivered: number; missing: number; duplicates: number }>(r.stdout);
    expect(s).toMatchObject({ delivered: 300, missing: 0, duplicates: 0 });
    const meta = await withAdmin(cluster.kafka(cluster.adminEnv), (a) => a.fetchTopicMetadata({ topics: [`smoke.raw.${s.runId}`, `smoke.out.${s.runId}`] }));
    for (const t of meta.topics) for (const p of t.partitions) expect(p.replicas.length, `${t.name}/${p.partitionId}`).toBe(3);
  });

  it('an existing topic with fewer partitions or replicas than a stage needs is reported by name', async () => {
    const topic = `mismatch-${randomUUID().slice(0, 8)}`;
    const kafka = cluster.kafka(cluster.adminEnv);
    const mismatches = await withAdmin(kafka, async (a) => {
      await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
      return ensureTopics(a, [{ topic, partitions: 4 }, { topic: `${topic}.new`, partitions: 2 }], {});
    });
    expect(mismatches).toEqual([{ topic, partitions: { wanted: 4, actual: 1 }, replicas: { wanted: 3, actual: 1 } }]);
    expect(describeMismatch(mismatches[0]!)).toBe(`topic ${topic} exists with 1 partitions where 4 are wanted (fewer instances can share it) and replication 1 where 3 is wanted (a broker loss can lose it)`);
    const created = await withAdmin(kafka, (a) => a.fetchTopicMetadata({ topics: [`${topic}.new`] }));
    for (const p of created.topics[0]!.partitions) expect(p.replicas.length).toBe(3);
  });

  it('a wrong password fails within a minute, says authentication failed, names the variables and never prints the password', async () => {
    const wrong = `wrong-${randomUUID()}`;
    const r = await ipt(['smoke', '--records', '10'], { ...cluster.adminEnv, IPT_KAFKA_SASL_PASSWORD: wrong });
    expect(r.code).toBe(1);
    expect(r.seconds).toBeLessThan(60);
    expect(r.stderr).toMatch(/Kafka authentication failed at .* \(SASL scram-sha-512 as admin\): check IPT_KAFKA_SASL_USERNAME and IPT_KAFKA_SASL_PASSWORD/);
    expect(r.stderr + r.stdout).not.toContain(wrong);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a broker certificate the client cannot verify fails within a minute, naming IPT_KAFKA_SSL_CA_FILE', async () => {
    const { IPT_KAFKA_SSL_CA_FILE: _ca, ...systemCas } = cluster.adminEnv;
    const r = await ipt(['smoke', '--records', '10'], systemCas);
    expect(r.code).toBe(1);
    expect(r.seconds).toBeLessThan(60);
    expect(r.stderr).toMatch(/TLS with Kafka at .* failed: the broker's certificate is not trusted .*check IPT_KAFKA_SSL_CA_FILE/);
    expect(r.stderr).not.toContain(cluster.adminEnv.IPT_KAFKA_SASL_PASSWORD!);
  });

  it('least privilege: the pipeline runs as a principal holding only the documented ACLs; without one, the stage stops naming the operation and the resource', async () => {
    const prefix = `acl-${randomUUID().slice(0, 8)}`;
    await grant(prefix);
    const dir = tmp();
    const { path } = writeCorpus(dir, 60);
    const app = { ...cluster.appEnv, IPT_EXACTLY_ONCE: 'true', IPT_SESSION_TIMEOUT_MS: '10000' };
    const run = await ipt(['pipeline', 'run', '--input', path, '--prefix', prefix, '--topology', 'fused', '--rounds', '2', '--llm-url', llm.url, '--length-estimate', 'words', '--partitions', '2', '--json'], app, { IPT_CLICKHOUSE_DB: `ipt_acl_${prefix.slice(4)}` });
    expect(run.code, run.stderr).toBe(0);
    expect(lastJson<{ ingested: number; deadLettered: number }>(run.stdout)).toMatchObject({ ingested: 60, deadLettered: 0 });

    // One stage, exactly-once, over topics of a prefix whose ACLs lack one grant each time.
    const denied = async (leaveOut: Grant, expected: RegExp) => {
      const p = `acl-${randomUUID().slice(0, 8)}`;
      if (leaveOut !== 'topic-create') {
        // The topics exist (created by an operator), so only the missing grant is in the way.
        await withAdmin(cluster.kafka(cluster.adminEnv), (a) => a.createTopics({ waitForLeaders: true, topics: [`${p}.in`, `${p}.out`, `${p}.identity.dlq`].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 3 })) }));
        // Something to process: a transaction (exactly-once) or a produce happens only for input.
        const serde = new AvroSerde(inject('stack').registryUrl);
        await serde.registerValueSchema(`${p}.in`, 'raw-text');
        await produceAll(cluster.kafka(cluster.adminEnv), `${p}.in`, rawTextMessages(serde, `${p}.in`, sampleTexts(5, { runId: p, bytes: 100 })));
      }
      await grant(p, [leaveOut]);
      const r = await ipt(['processor', 'identity', '--input', `${p}.in`, '--output', `${p}.out`, '--name', `${p}.identity`], app, {}, 90_000);
      expect(r.code, `${leaveOut}: ${r.stderr}`).toBe(1);
      expect(r.stderr, leaveOut).toMatch(expected);
      expect(r.stderr).not.toContain(cluster.appEnv.IPT_KAFKA_SASL_PASSWORD!);
    };
    await denied('group', /Kafka denied User:ipt-app: it needs Read on Group acl-\w+\.identity \(GROUP_AUTHORIZATION_FAILED\)/);
    await denied('transactional-id', /Kafka denied User:ipt-app: it needs Write and Describe on TransactionalId acl-\w+\.identity-\S+ \(TRANSACTIONAL_ID_AUTHORIZATION_FAILED\)/);
    await denied('topic-create', /Kafka denied User:ipt-app: it needs Create on Topic acl-\w+\.in, acl-\w+\.out, acl-\w+\.identity\.dlq/);
  });

  it('a transactional producer writing to partitions on three leaders writes each record once, also when a send is retried', async () => {
    // kafkajs retries a send that failed on one broker (CONCURRENT_TRANSACTIONS right after a commit, while the markers
    // are written); unpatched, the retry could re-send another broker's batch still in flight, under new sequence
    // numbers, and the transaction committed both (22 and 24 doubles in 1,800 records here before the patch).
    const kafka = cluster.kafka(cluster.adminEnv, {
      logLevel: logLevel.ERROR,
      logCreator: () => ({ log }) => void (/Failed to send messages/.test(log.message) && retries++),
    });
    let retries = 0;
    const topic = `txn-${randomUUID().slice(0, 8)}`;
    await withAdmin(kafka, (a) => a.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 3 }], waitForLeaders: true }));
    const leaders = await withAdmin(kafka, async (a) => new Set((await a.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.map((p) => p.leader)));
    expect(leaders.size, 'the partitions are led by all three nodes').toBe(3);
    // The settings of the stages' transactional producer (processors/runtime/run-processor.ts).
    const producer = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, retry: { initialRetryTime: 20, maxRetryTime: 1000, retries: 10 } });
    await producer.connect();
    let sent = 0;
    try {
      // Until some sends were retried (a few in a hundred transactions here), and at least 200 transactions.
      for (let t = 0; t < 200 || (retries < 3 && t < 800); t++) {
        const txn = await producer.transaction();
        await txn.send({ topic, messages: Array.from({ length: 6 }, (_, p) => ({ partition: p, key: `${t}/${p}`, value: 'x' })) });
        await txn.commit();
        sent += 6;
      }
    } finally {
      await producer.disconnect();
    }
    // commit() returns once the coordinator has logged the decision; it writes the partitions' markers after, so the
    // last transaction may not be readable on every partition yet. Read again until all are there or 30 s passed: a
    // record still missing then is lost.
    let seen = new Map<string, number>();
    for (const until = Date.now() + 30_000; ; await sleep(1000)) {
      seen = new Map();
      await scanToEnd(kafka, topic, (messages) => {
        for (const m of messages) seen.set(String(m.key), (seen.get(String(m.key)) ?? 0) + 1);
      });
      if (seen.size >= sent || Date.now() > until) break;
    }
    const read = [...seen.values()].reduce((a, b) => a + b, 0);
    const missing = Array.from({ length: sent }, (_, i) => `${Math.floor(i / 6)}/${i % 6}`).filter((k) => !seen.has(k));
    log(`transactional sends: ${sent} records, ${retries} sends retried, ${read} read back, ${seen.size} distinct${missing.length ? `, missing ${missing.slice(0, 10).join(' ')}` : ''}`);
    expect(retries, 'some sends were retried, or the test proves nothing').toBeGreaterThan(0);
    expect({ read, distinct: seen.size }).toEqual({ read: sent, distinct: sent });
  });

  it('a 2-round fused run of 2,000 texts, exactly-once, with the leader of the mixed stream SIGKILLed mid-run and restarted: every text accounted for, no duplicate', async () => {
    const prefix = `kill-${randomUUID().slice(0, 8)}`;
    const database = `ipt_kill_${prefix.slice(5)}`;
    const dir = tmp();
    const { path } = writeCorpus(dir, 2000);
    const env = { ...cluster.adminEnv, IPT_EXACTLY_ONCE: 'true', IPT_SESSION_TIMEOUT_MS: '10000' };
    const run = ipt(['pipeline', 'run', '--input', path, '--prefix', prefix, '--topology', 'fused', '--rounds', '2', '--llm-url', llm.url, '--length-estimate', 'words', '--partitions', '3', '--json'], env, { IPT_CLICKHOUSE_DB: database }, 400_000);
    const admin = cluster.kafka(cluster.adminEnv).admin();
    await admin.connect();
    const mixed = `${prefix}.train.mixed`;
    let killed: { node: number; atMixed: number } | undefined;
    let finished = false;
    void run.then(() => (finished = true));
    try {
      // Kill once the mixed stream is under way, so the kill lands in the middle of the run's transactions.
      while (!finished && !killed) {
        const high = await admin.fetchTopicOffsets(mixed).then((o) => Number(o[0]?.high ?? 0)).catch(() => 0);
        if (high >= 300) {
          const leader = (await admin.fetchTopicMetadata({ topics: [mixed] })).topics[0]!.partitions[0]!.leader;
          await killNode(cluster.cfg, leader);
          killed = { node: leader, atMixed: high };
          log(`node ${leader} (leader of ${mixed}) SIGKILLed at offset ${high}`);
        } else await sleep(100);
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    expect(killed, 'the broker was killed while the run was going on').toBeDefined();
    await sleep(5000);
    await startNode(cluster.cfg, killed!.node, { log });
    log(`node ${killed!.node} restarted`);
    const r = await run;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const s = lastJson<{ runId: string; ingested: number; deadLettered: number }>(r.stdout);
    expect(s.ingested).toBe(2000);
    const a = await ipt(['audit', '--run', s.runId, '--prefix', prefix, '--json'], cluster.adminEnv, { IPT_CLICKHOUSE_DB: database });
    const report = lastJson<{ texts: number; lost: number; accounted: number; mixed: { records: number; copies: number; duplicated: number }; ok: boolean }>(a.stdout);
    log(`audit: ${JSON.stringify(report)}`);
    expect(report).toMatchObject({ texts: 2000, lost: 0, accounted: 2000, ok: true });
    expect(report.mixed.duplicated, 'mixed records present twice').toBe(0);
    expect(report.mixed.copies).toBe(report.mixed.records);
    // The run's own limit (400 s) comes first: a run that hangs then fails with its stderr above, not a bare timeout.
  }, 460_000);
});


/** Short, so that a killed instance's partitions move soon; the broker's minimum is 6 s. */
const SESSION_MS = 6000;
const HOST_PARTITIONS = 4;

/**
 * Stage instances on hosts of their own: each in a network namespace on the cluster's bridge, reaching the Kafka
 * nodes at their addresses, and the shared registry, ClickHouse and the LLM (on this machine's 127.0.0.1) through
 * relays on the bridge's address, as another machine on the network would.
 */
describe('stages scaled out across hosts of the namespaced cluster', () => {
  const procs: StageProcess[] = [];
  const relays: TcpRelay[] = [];
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(10_000)));
    await Promise.allSettled(relays.map((r) => r.close()));
  }, 60_000);

  /** An instance of `stage` on host namespace `host`, with the relayed services and the given settings. */
  async function onHost(host: string, stage: StageName, name: string, o: { prefix: string; database: string; llmUrl: string; exactlyOnce?: boolean }): Promise<StageProcess> {
    expect(cluster.net, 'hosts of their own need the cluster in network namespaces (root, iproute2)').toBe('netns');
    const h = hostNamespace(clusterLayout(cluster.cfg), host);
    const stack = inject('stack');
    const relayed = await relayUrls(h.gateway, [stack.registryUrl, stack.clickhouseUrl, o.llmUrl]);
    relays.push(...relayed.relays);
    const [registry, clickhouse, llmUrl] = relayed.urls as [string, string, string];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...cluster.adminEnv,
      IPT_REGISTRY_URL: registry,
      IPT_CLICKHOUSE_URL: clickhouse,
      IPT_CLICKHOUSE_DB: o.database,
      IPT_SESSION_TIMEOUT_MS: String(SESSION_MS),
      IPT_BATCH_SIZE: '5',
      IPT_CLIENT_ID: name,
      IPT_INSTANCE_ID: name,
      IPT_EXACTLY_ONCE: o.exactlyOnce ? 'true' : 'false',
      IPT_LOG_LEVEL: 'warn',
    };
    const args = ['--stages', stage, '--prefix', o.prefix, '--partitions', String(HOST_PARTITIONS), '--llm-url', llmUrl, '--concurrency', '2'];
    // Each namespace has a loopback of its own: the same ops port serves on every host.
    const p = new StageProcess(name, args, env, tmp(), 9464, h);
    procs.push(p);
    p.start();
    await p.ready();
    log(`${name} ready on ${h.name} (${h.address})`);
    return p;
  }

  const group = async (id: string, settled: (ms: GroupMember[]) => boolean, timeoutMs?: number) =>
    withAdmin(cluster.kafka(cluster.adminEnv), (admin) => waitForGroup(admin, id, settled, timeoutMs));

  /** The first record written to these topics after `after` (epoch ms), by any partition. */
  async function firstWriteAfter(topics: string[], after: number): Promise<number | undefined> {
    let first: number | undefined;
    for (const topic of topics) {
      await scanToEnd(cluster.kafka(cluster.adminEnv), topic, (messages) => {
        for (const m of messages) {
          const at = Number(m.timestamp);
          if (at > after && (first === undefined || at < first)) first = at;
        }
      });
    }
    return first;
  }

  const mixedSize = (topic: string) =>
    withAdmin(cluster.kafka(cluster.adminEnv), async (admin) => (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0));

  async function audited(runId: string, prefix: string, database: string) {
    const a = await ipt(['audit', '--run', runId, '--prefix', prefix, '--json'], cluster.adminEnv, { IPT_CLICKHOUSE_DB: database });
    const report = lastJson<{ texts: number; lost: number; accounted: number; mixed: { records: number; copies: number; duplicated: number }; ok: boolean }>(a.stdout);
    log(`audit: ${JSON.stringify(report)}`);
    return report;
  }

  it('two synthesis instances on two hosts share a staged run; one is SIGKILLed and the other takes its partitions, nothing lost', async () => {
    const prefix = `hosts-${randomUUID().slice(0, 8)}`;
    const database = `ipt_hosts_${prefix.slice(6)}`;
    const n = 60;
    const { path, texts } = writeCorpus(tmp(), n, 'hosts.jsonl', 'hosts');
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 150);
    try {
      const o = { prefix, database, llmUrl: slow.url };
      const a = await onHost('sa', 'synthesis', `${prefix}-synthesis-a`, o);
      await onHost('sb', 'synthesis', `${prefix}-synthesis-b`, o);
      const id = stageGroup(pipelineTopics(prefix), 'synthesis');
      await group(id, (ms) => ms.length === 2 && ms.every((m) => m.partitions === HOST_PARTITIONS / 2));
      const others = ['templating', 'templating-pool', 'round-feedback', 'mixing', 'evaluation', 'clickhouse-sink'].join(',');
      const run = ipt(
        ['pipeline', 'run', '--input', path, '--prefix', prefix, '--stages', others, '--rounds', '2', '--llm-url', slow.url, '--length-estimate', 'words', '--partitions', String(HOST_PARTITIONS), '--json'],
        cluster.adminEnv,
        { IPT_CLICKHOUSE_DB: database },
        300_000,
      );
      while (slow.prompts.length < 15) await sleep(20);
      await a.kill();
      const killedAt = Date.now();
      const prompts = slow.prompts.length;
      const after = await group(id, (ms) => ms.length === 1 && ms[0]!.partitions === HOST_PARTITIONS, 4 * SESSION_MS);
      const rebalancedMs = Date.now() - killedAt;
      expect(after.members[0]!.clientId).toBe(`${prefix}-synthesis-b`);
      const r = await run;
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const s = lastJson<{ runId: string; ingested: number; augmented: number; deadLettered: number }>(r.stdout);
      expect(prompts).toBeLessThan(n);
      expect(s).toMatchObject({ ingested: n, augmented: n, deadLettered: 0 });
      const report = await audited(s.runId, prefix, database);
      expect(report).toMatchObject({ texts: n, lost: 0, accounted: n, ok: true });
      log(`synthesis across hosts: killed after ${prompts} of ${n} prompts; the group rebalanced ${rebalancedMs} ms after the kill`);
    } finally {
      await slow.stop();
    }
  });

  // One active instance per prefix (they hold each run's mix counts in memory), the other a standby.
  it.each([
    { stage: 'fused', topology: 'fused', others: 'evaluation,clickhouse-sink', killAfter: 12 },
    { stage: 'mixing', topology: 'staged', others: 'templating,templating-pool,synthesis,round-feedback,evaluation,clickhouse-sink', killAfter: 0 },
  ] as const)('the $stage stage runs on one host with a standby on another, exactly-once; the active one is SIGKILLed and the standby takes over within the session timeout, nothing lost or doubled', async ({ stage, topology, others, killAfter }) => {
    const prefix = `hostf-${randomUUID().slice(0, 8)}`;
    const database = `ipt_hostf_${prefix.slice(6)}`;
    const n = 60;
    const { path, texts } = writeCorpus(tmp(), n, `${stage}.jsonl`, stage);
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 150);
    try {
      const o = { prefix, database, llmUrl: slow.url, exactlyOnce: true };
      const [nameA, nameB] = [`${prefix}-${stage}-a`, `${prefix}-${stage}-b`];
      const a = await onHost(`${stage.slice(0, 1)}a`, stage, nameA, o);
      const id = stageGroup(pipelineTopics(prefix), stage);
      await group(id, (ms) => ms.length === 1 && ms[0]!.partitions === HOST_PARTITIONS);
      await onHost(`${stage.slice(0, 1)}b`, stage, nameB, o);
      const before = await group(id, (ms) => ms.length === 2);
      expect(before.members.map((m) => [m.clientId, m.partitions]).sort()).toEqual([
        [nameA, HOST_PARTITIONS],
        [nameB, 0],
      ]);
      const run = ipt(
        ['pipeline', 'run', '--input', path, '--prefix', prefix, '--topology', topology, '--stages', others, '--rounds', '2', '--llm-url', slow.url, '--length-estimate', 'words', '--partitions', String(HOST_PARTITIONS), '--json'],
        { ...cluster.adminEnv, IPT_EXACTLY_ONCE: 'true' },
        { IPT_CLICKHOUSE_DB: database },
        300_000,
      );
      // The fused stage is killed part-way through round 0's prompts; the mixer once it has mixed some records.
      if (stage === 'fused') while (slow.prompts.length < killAfter) await sleep(20);
      else while ((await mixedSize(pipelineTopics(prefix).mixed)) < 8) await sleep(100);
      await a.kill();
      const killedAt = Date.now();
      const after = await group(id, (ms) => ms.length === 1 && ms[0]!.partitions === HOST_PARTITIONS, 4 * SESSION_MS);
      const rebalancedMs = Date.now() - killedAt;
      expect(after.members[0]!.clientId).toBe(nameB);
      const r = await run;
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const s = lastJson<{ runId: string; ingested: number; augmented: number; deadLettered: number }>(r.stdout);
      expect(s).toMatchObject({ ingested: n, augmented: n, deadLettered: 0 });
      const report = await audited(s.runId, prefix, database);
      expect(report).toMatchObject({ texts: n, lost: 0, accounted: n, ok: true });
      expect(report.mixed.duplicated, 'mixed records present twice').toBe(0);
      // Takeover: from the kill to the standby's first output (the killed instance writes nothing after its death).
      const t = pipelineTopics(prefix);
      const first = await firstWriteAfter(stage === 'fused' ? [t.mixed, t.pool, t.metrics] : [t.mixed], killedAt);
      expect(first).toBeDefined();
      const takeoverMs = first! - killedAt;
      log(`${stage} across hosts: the group rebalanced ${rebalancedMs} ms and the standby's first output came ${takeoverMs} ms after the kill (session timeout ${SESSION_MS} ms)`);
      expect(takeoverMs).toBeLessThan(SESSION_MS + 2500);
    } finally {
      await slow.stop();
    }
  });
});
