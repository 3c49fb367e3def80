import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Admin } from 'kafkajs';
import { ensurePipelineTopics } from '../../ops/pipeline/start-pipeline.ts';
import { runOfKey, stageGroup, TOPOLOGIES, type PipelineTopics, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import { waitForGroup } from '../../ops/bench/group-members.ts';
import { exited, logger, spawnIpt, testConfig, testKafka } from './helpers.ts';
import { cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';

/** Short, so that a killed member's partitions move soon; the broker's minimum is 6 s. */
const SESSION_MS = 6000;
const PARTITIONS = 4;
/**
 * A SIGKILLed member is declared dead only when its session runs out, counted from its last heartbeat (sent every
 * tenth of the session, so at most that long before the kill); the standby hears of the rebalance at its next
 * heartbeat (an idle member sends one after each empty fetch, up to 1 s), joins, and writes once its first chunk is
 * done. Takeover is therefore the session timeout, give or take a heartbeat interval, plus about a second; the
 * margin leaves room for a loaded machine.
 */
const TAKEOVER_LIMIT_MS = SESSION_MS + 2500;

const started: ChildProcess[] = [];
afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(started.map(exited));
});

/** `ipt pipeline up --stages <stage>` as a process of its own, named by its client id in the group. */
function stageProcess(prefix: string, stage: StageName, name: string, llmUrl: string, database: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const args = ['pipeline', 'up', '--stages', stage, '--prefix', prefix, '--partitions', String(PARTITIONS), '--llm-url', llmUrl, '--concurrency', '2'];
  const child = spawnIpt(args, {
    IPT_CLICKHOUSE_DB: database,
    IPT_SESSION_TIMEOUT_MS: String(SESSION_MS),
    IPT_BATCH_SIZE: '5',
    IPT_CLIENT_ID: name,
    IPT_INSTANCE_ID: name,
    ...env,
  });
  started.push(child);
  return child;
}

/** The write times (epoch ms) of every record in these topics, with their partitions. */
async function writeTimes(topics: string[]): Promise<{ partition: number; at: number }[]> {
  const out: { partition: number; at: number }[] = [];
  for (const topic of topics) await scanToEnd(testKafka(), topic, (messages, partition) => void out.push(...messages.map((m) => ({ partition, at: Number(m.timestamp) }))));
  return out;
}

/** The first write after `after` (the first output of whoever took over: the killed process writes nothing more). */
const firstAfter = (times: { at: number }[], after: number): number | undefined => times.reduce<number | undefined>((first, { at }) => (at > after && (first === undefined || at < first) ? at : first), undefined);

/** Records of a run in a topic, by key: how many keys, and how many copies beyond one (at-least-once re-deliveries). */
async function copiesOf(topic: string, runId: string): Promise<{ keys: number; extra: number }> {
  const seen = new Map<string, number>();
  await scanToEnd(testKafka(), topic, (messages) => {
    for (const m of messages) {
      const k = m.key?.toString() ?? '';
      if (runOfKey(k) === runId) seen.set(k, (seen.get(k) ?? 0) + 1);
    }
  });
  return { keys: seen.size, extra: [...seen.values()].reduce((s, n) => s + n - 1, 0) };
}

/**
 * A run's mixed records: the raw texts in them (their lineage), how many domain records came more than once, and the
 * mix indices, which a mixer that resumed its predecessor's counts keeps gapless.
 */
async function mixedOf(t: PipelineTopics, runId: string): Promise<{ texts: Set<string>; extra: number; indices: number[]; log: string[] }> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  const texts = new Set<string>();
  const sources = new Set<string>();
  const indices: number[] = [];
  const log: string[] = [];
  let copies = 0;
  await scanToEnd(testKafka(), t.mixed, async (messages) => {
    await serde.prefetch(messages.map((m) => m.value));
    for (const m of messages) {
      const x = serde.decode(m.value, loadSchema('mixed-text')) as MixedTextRecord;
      if (x.runId !== runId) continue;
      indices.push(x.mixIndex);
      log.push(`${m.offset} ${m.timestamp} #${x.mixIndex} ${x.sourceId}`);
      if (x.source === 'general') continue;
      for (const id of x.textIds) texts.add(id);
      sources.add(x.sourceId);
      copies++;
    }
  });
  return { texts, extra: copies - sources.size, indices: indices.sort((a, b) => a - b), log };
}

async function mixedSize(t: PipelineTopics): Promise<number> {
  return withAdmin(async (admin) => (await admin.fetchTopicOffsets(t.mixed)).reduce((n, o) => n + Number(o.high), 0));
}

async function withAdmin<T>(f: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

describe('scale-out and fail-over of stage instances (real stack)', () => {
  it('two synthesis instances share a staged run; one is SIGKILLed and the other takes its partitions, nothing lost', async () => {
    const iso = isolated();
    const t = await ensurePipelineTopics({ runtime: testConfig(), prefix: iso.prefix, partitions: PARTITIONS, logger });
    const group = stageGroup(t, 'synthesis');
    const n = 60;
    const { path, texts } = writeCorpus(tmp(), n, 'scale.jsonl', 'scale');
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 150);
    const a = stageProcess(iso.prefix, 'synthesis', `${iso.prefix}-synthesis-a`, slow.url, iso.database);
    const b = stageProcess(iso.prefix, 'synthesis', `${iso.prefix}-synthesis-b`, slow.url, iso.database);
    try {
      // Both instances active, two partitions each, before any text is written.
      const shared = await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 2 && ms.every((m) => m.partitions === PARTITIONS / 2)));
      const victim = shared.members.find((m) => m.clientId.endsWith('-a'))!;
      let killedAt = 0;
      const killer = (async () => {
        while (slow.prompts.length < 15) await sleep(20);
        a.kill('SIGKILL');
        killedAt = Date.now();
        const prompts = slow.prompts.length;
        await exited(a);
        const after = await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.partitions === PARTITIONS, 4 * SESSION_MS));
        return { prompts, rebalancedMs: Date.now() - killedAt, survivor: after.members[0]!.clientId };
      })();
      const others = TOPOLOGIES.staged.filter((s) => s !== 'synthesis').join(',');
      const s = await runOnStack(iso, path, { 'llm-url': slow.url, rounds: '2', stages: others, run: 'scale', partitions: String(PARTITIONS) });
      const k = await killer;
      expect(k.prompts).toBeLessThan(n);
      expect(k.survivor).toBe(`${iso.prefix}-synthesis-b`);
      // Every text accounted for: converted (both rounds), one metric row each, no dead letter.
      expect(s.ingested).toBe(n);
      expect(s.augmented).toBe(n);
      expect(s.deadLettered).toBe(0);
      expect(s.metricRows.synthesis).toBe(n);
      const results = await copiesOf(t.results, s.runId);
      expect(results.keys).toBe(n);
      // Both wrote results before the kill, each on its own partitions; after it, the survivor wrote on the killed
      // one's partitions too: the work moved over.
      const victimParts = new Set(victim.assignment[t.requests] ?? []);
      const times = await writeTimes([t.results]);
      const before = (mine: boolean) => times.filter((x) => x.at < killedAt && victimParts.has(x.partition) === mine).length;
      expect(before(true)).toBeGreaterThan(0);
      expect(before(false)).toBeGreaterThan(0);
      const moved = firstAfter(times.filter((x) => victimParts.has(x.partition)), killedAt);
      expect(moved).toBeDefined();
      const mixed = await mixedOf(t, s.runId);
      expect(mixed.texts.size).toBe(n);
      process.stderr.write(
        `[scale-out] synthesis: killed after ${k.prompts} of ${n} prompts; group rebalanced ${k.rebalancedMs} ms after the kill, ` +
          `first result on the killed instance's partitions ${moved === undefined ? '-' : moved - killedAt} ms after it; ` +
          `at-least-once re-deliveries: ${results.extra} results, ${mixed.extra} mixed\n`,
      );
    } finally {
      b.kill('SIGTERM');
      await exited(b);
      await slow.stop();
    }
  });

  // The fused stage and the mixer keep each run's mix counts in memory: one active instance, the other a standby.
  it.each([
    // Killed with part of round 0 synthesized: round-1 texts then continue collections the standby never held.
    { stage: 'fused', topology: 'fused', rounds: 2, n: 40, killWhen: 'prompts', killAfter: 12 },
    // Killed with some texts mixed: the standby must go on from the killed mixer's counts.
    { stage: 'mixing', topology: 'staged', rounds: 1, n: 40, killWhen: 'mixed', killAfter: 10 },
  ] as const)('the $stage stage runs with a standby that takes over when the active instance is SIGKILLed, nothing lost', async ({ stage, topology, rounds, n, killWhen, killAfter }) => {
    const iso = isolated();
    const t = await ensurePipelineTopics({ runtime: testConfig(), prefix: iso.prefix, partitions: PARTITIONS, logger });
    const group = stageGroup(t, stage);
    const { path, texts } = writeCorpus(tmp(), n, `${stage}.jsonl`, stage);
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 150);
    const nameA = `${iso.prefix}-${stage}-a`;
    const nameB = `${iso.prefix}-${stage}-b`;
    const a = stageProcess(iso.prefix, stage, nameA, slow.url, iso.database);
    let b: ChildProcess | undefined;
    try {
      // A first, then B: B joins as the standby, and holds nothing while A lives.
      await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.partitions === PARTITIONS));
      b = stageProcess(iso.prefix, stage, nameB, slow.url, iso.database);
      const before = await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 2));
      expect(before.members.map((m) => [m.clientId, m.partitions]).sort()).toEqual([
        [nameA, PARTITIONS],
        [nameB, 0],
      ]);

      let killedAt = 0;
      const killer = (async () => {
        if (killWhen === 'prompts') while (slow.prompts.length < killAfter) await sleep(20);
        else while ((await mixedSize(t)) < killAfter) await sleep(50);
        a.kill('SIGKILL');
        killedAt = Date.now();
        await exited(a);
        const after = await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.partitions === PARTITIONS, 4 * SESSION_MS));
        return { rebalancedMs: Date.now() - killedAt, active: after.members[0]!.clientId };
      })();
      const others = TOPOLOGIES[topology].filter((x) => x !== stage).join(',');
      const s = await runOnStack(iso, path, { 'llm-url': slow.url, rounds: String(rounds), stages: others, run: stage, partitions: String(PARTITIONS), topology, concurrency: '2' });
      const k = await killer;
      expect(k.active).toBe(nameB);
      expect(b.exitCode).toBeNull();
      // Nothing lost: every text accounted for and in the mix, one metric row each.
      expect(s.ingested).toBe(n);
      expect(s.augmented).toBe(n);
      expect(s.deadLettered).toBe(0);
      expect(s.metricRows.synthesis).toBe(n);
      const mixed = await mixedOf(t, s.runId);
      expect(mixed.texts.size).toBe(n);
      // The standby went on from the killed one's newest counts (its changelog): no mix index handed out twice, which a
      // standby counting from zero, or from an older state record, would do.
      const twice = mixed.indices.filter((x, i) => i > 0 && mixed.indices[i - 1] === x);
      expect(twice, `killed at ${killedAt}; offset, time, mix index, source:\n${mixed.log.join('\n')}`).toEqual([]);
      const gaps = mixed.indices[mixed.indices.length - 1]! + 1 - mixed.indices.length;
      // Takeover: from the kill to the standby's first output (the killed process writes nothing after its death).
      const outputs = stage === 'fused' ? [t.mixed, t.pool, t.metrics] : [t.mixed];
      const first = firstAfter(await writeTimes(outputs), killedAt);
      expect(first).toBeDefined();
      const takeoverMs = first! - killedAt;
      process.stderr.write(
        `[scale-out] ${stage}: standby took over: group rebalanced ${k.rebalancedMs} ms and first output ${takeoverMs} ms after the kill ` +
          `(session timeout ${SESSION_MS} ms); at-least-once re-deliveries in the mix: ${mixed.extra}, mix indices skipped: ${gaps}\n`,
      );
      expect(takeoverMs).toBeLessThan(TAKEOVER_LIMIT_MS);
    } finally {
      if (b && b.exitCode === null) {
        b.kill('SIGTERM');
        await exited(b);
      }
      await slow.stop();
    }
  });

  it('an active instance taken for dead (paused past its session) stops when it wakes, and joins again as a standby', async () => {
    const iso = isolated();
    const t = await ensurePipelineTopics({ runtime: testConfig(), prefix: iso.prefix, partitions: PARTITIONS, logger });
    const group = stageGroup(t, 'mixing');
    const [nameA, nameB] = [`${iso.prefix}-mixing-a`, `${iso.prefix}-mixing-b`];
    const holder = (name: string) => (ms: { clientId: string; partitions: number }[]) => ms.length === 2 && ms.some((m) => m.clientId === name && m.partitions === PARTITIONS);
    const a = stageProcess(iso.prefix, 'mixing', nameA, 'http://127.0.0.1:9/v1', iso.database);
    await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.partitions === PARTITIONS));
    const b = stageProcess(iso.prefix, 'mixing', nameB, 'http://127.0.0.1:9/v1', iso.database);
    try {
      await withAdmin((admin) => waitForGroup(admin, group, holder(nameA)));
      // Paused, A sends no heartbeat: its session runs out and B takes the partitions while A still believes it holds them.
      a.kill('SIGSTOP');
      await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.clientId === nameB && ms[0]!.partitions === PARTITIONS, 4 * SESSION_MS));
      a.kill('SIGCONT');
      // Its counts may be stale now: it must not take the partitions back, nor go on — it stops with exit 1.
      expect(await exited(a)).toBe(1);
      // Started again, it is the standby, and B keeps the partitions.
      const again = stageProcess(iso.prefix, 'mixing', nameA, 'http://127.0.0.1:9/v1', iso.database);
      await withAdmin((admin) => waitForGroup(admin, group, holder(nameB)));
      again.kill('SIGTERM');
      expect(await exited(again)).toBe(0);
    } finally {
      if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
      b.kill('SIGTERM');
      await exited(b);
    }
  });

  it('exactly-once: a synthesis instance taken for dead mid-chunk (paused past its session) commits nothing of that chunk when it wakes, so no result is there twice', async () => {
    const iso = isolated();
    const t = await ensurePipelineTopics({ runtime: testConfig(), prefix: iso.prefix, partitions: PARTITIONS, logger });
    const group = stageGroup(t, 'synthesis');
    const n = 40;
    const { path, texts } = writeCorpus(tmp(), n, 'paused.jsonl', 'paused');
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 1500);
    const eos = { IPT_EXACTLY_ONCE: 'true' };
    const [nameA, nameB] = [`${iso.prefix}-synthesis-a`, `${iso.prefix}-synthesis-b`];
    const a = stageProcess(iso.prefix, 'synthesis', nameA, slow.url, iso.database, eos);
    const b = stageProcess(iso.prefix, 'synthesis', nameB, slow.url, iso.database, eos);
    try {
      await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 2 && ms.every((m) => m.partitions === PARTITIONS / 2)));
      const pauser = (async () => {
        // Both are in the middle of a chunk (each answer takes 1.5 s): A is paused with its chunk's answers on the way.
        while (slow.prompts.length < 4) await sleep(20);
        a.kill('SIGSTOP');
        // B takes A's partitions once A's session has run out, and does A's chunk again.
        await withAdmin((admin) => waitForGroup(admin, group, (ms) => ms.length === 1 && ms[0]!.clientId === nameB && ms[0]!.partitions === PARTITIONS, 4 * SESSION_MS));
        await sleep(3000);
        a.kill('SIGCONT');
      })();
      const others = TOPOLOGIES.staged.filter((s) => s !== 'synthesis').join(',');
      const s = await runOnStack(iso, path, { 'llm-url': slow.url, rounds: '1', stages: others, run: 'paused', partitions: String(PARTITIONS) }, {}, undefined, eos);
      await pauser;
      expect(s.ingested).toBe(n);
      expect(s.augmented).toBe(n);
      expect(s.deadLettered).toBe(0);
      const results = await copiesOf(t.results, s.runId);
      expect(results.keys).toBe(n);
      // A's chunk was answered while it slept: committed on waking, its results would be there beside B's.
      expect(results.extra, 'results written twice').toBe(0);
      expect(slow.prompts.length, 'the paused chunk was asked again by B').toBeGreaterThan(n);
    } finally {
      for (const c of [a, b]) {
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGCONT');
          c.kill('SIGTERM');
          await exited(c);
        }
      }
      await slow.stop();
    }
  });
});
