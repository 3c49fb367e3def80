import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { pipelineTopics, runOfKey, type PipelineTopics, type StageName, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import type { Kafka } from 'kafkajs';
import { ensurePipelineTopics } from '../pipeline/start-pipeline.ts';
import { clickhouseClient, queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { sqlString } from '../../connectors/clickhouse/run-queries.ts';
import { endpointsEnv } from '../stack/locate.ts';
import { pipelineOptions, runSettings } from '../cli/pipeline-options.ts';
import { runPipeline, type PipelineRunSummary } from '../jobs/pipeline-run.ts';
import { auditRun, type AuditReport } from '../jobs/audit.ts';
import { freePorts, startPrivateStack, type PrivateStack } from './private-stack.ts';
import { StageProcess } from './stage-process.ts';
import { LlmEndpoints } from './llm-endpoints.ts';
import { interrupted, onInterrupt } from './cleanup.ts';
import { stageHost, type StageHost } from './stage-host.ts';
import { netnsProblem } from '../stack/netns.ts';
import { finishTrainerKill, SinkUnderFire, trainerDir, trainerTools, type TrainerFigures, type TrainerTools } from './trainer-kill.ts';

export const SCENARIOS = ['stage-kill', 'broker-kill', 'llm-outage', 'llm-endpoint-lost', 'clickhouse-outage', 'registry-outage', 'stage-host-cut', 'trainer-kill'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenarios that run on a private 3-node cluster in network namespaces (skipped, with the reason, where there are none). */
export const CLUSTER_SCENARIOS: readonly Scenario[] = ['stage-host-cut'];
const CLUSTER_BROKERS = 3;
const needsCluster = (c: ChaosCase) => CLUSTER_SCENARIOS.includes(c.scenario);

export interface ChaosCase {
  scenario: Scenario;
  topology: Topology;
  exactlyOnce: boolean;
  texts: number;
  /** stage-kill, trainer-kill: how many times the stage process is killed. */
  kills: number;
  /** trainer-kill: how many times the trainer sink process is killed (default 1). */
  sinkKills?: number;
  /** Outage scenarios: how long the service stays down. */
  outageSeconds: number;
}

/**
 * A small matrix for CI (about 2–3 minutes on 2 cores, stack included): a killed stage with exactly-once, an LLM
 * outage with at-least-once, a ClickHouse outage; the topologies alternate.
 */
export const CI_CASES: readonly ChaosCase[] = [
  { scenario: 'stage-kill', topology: 'fused', exactlyOnce: true, texts: 2000, kills: 3, outageSeconds: 0 },
  { scenario: 'llm-outage', topology: 'staged', exactlyOnce: false, texts: 2000, kills: 0, outageSeconds: 15 },
  { scenario: 'clickhouse-outage', topology: 'fused', exactlyOnce: false, texts: 2000, kills: 0, outageSeconds: 15 },
];

export interface ChaosOptions {
  cases: ChaosCase[];
  rounds: number;
  partitions: number;
  /** IPT_SESSION_TIMEOUT_MS of the stage processes: a killed member holds its partitions this long. */
  sessionTimeoutMs: number;
  runTimeoutMs: number;
  seed: number;
  /** Keep the stage processes' and the suite's logs here (else they go with the private stack's folder). */
  logsDir?: string;
  /** The stage processes' LLM request timeout (`pipeline up --timeout-ms`); their default (120 s) when unset. */
  llmTimeoutMs?: number;
  /** trainer-kill: the trainer's Python and the sink's tokenizer.json; by default the stack's (`ipt models install --trainer`). */
  trainer?: Partial<TrainerTools>;
  log: (line: string) => void;
}

export interface ScenarioResult {
  scenario: Scenario;
  topology: Topology;
  exactlyOnce: boolean;
  /** Texts the run was given. */
  texts: number;
  /** Distinct texts of the run in the raw topic. */
  ingested: number;
  /** Converted, kept raw or dead-lettered. */
  accounted: number;
  lost: number;
  deadLettered: number;
  /** Mixed records present more than once (by id). */
  duplicated: number;
  /** Mixed records read, copies included. */
  mixedCopies: number;
  /** Texts with a synthesis row in ClickHouse, against the metric events expected. */
  metricRows: number;
  metricRowsExpected: number;
  extraRows: number;
  /** Stage processes that exited without being killed (a stage that kept crashing), restarted by the suite. */
  unplannedExits: number;
  faults: { kind: string; startS: number; endS: number; recoverS: number }[];
  /** The worst, over the scenario's faults, of the time from a fault's end to the run moving again (Progress.recoveredAfter). */
  recoverSeconds: number | null;
  /** The bounded run returned its summary (rather than failing or timing out). */
  runCompleted: boolean;
  /** The run, from ingest to its summary (or to the end of the wait after a failed run). */
  seconds: number;
  /** Nothing lost, nothing doubled with exactly-once, every metric row stored once, no dead letter from an LLM fault. */
  ok: boolean;
  /** What went wrong, whether or not it cost a text. */
  problems: string[];
  notes: string[];
  /** Why the scenario did not run (no network namespaces here); it then proves nothing and is not ok. */
  skipped?: string;
  /** trainer-kill: the sink's kills and batches, and the trainer's crash and resume. */
  trainer?: TrainerFigures;
}

type StackFigures = { startupSeconds: number; services: Record<string, number>; downSeconds: number };

export interface ChaosReport {
  /** The first private stack the run started (the single-broker one, unless only cluster scenarios ran). */
  stack: StackFigures;
  /** The 3-node cluster stack, when a cluster scenario ran. */
  clusterStack?: StackFigures;
  settings: { rounds: number; partitions: number; sessionTimeoutMs: number; runTimeoutMs: number; seed: number; llmTimeoutMs?: number };
  scenarios: ScenarioResult[];
  seconds: number;
  ok: boolean;
}

/** Seeded, so that a run's kill moments can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One layout per topology: the process that calls the LLM (the one stage-kill kills) and the rest. */
const LAYOUT: Record<Topology, { victim: StageName[]; rest: StageName[] }> = {
  staged: { victim: ['synthesis'], rest: ['templating', 'templating-pool', 'round-feedback', 'mixing', 'evaluation', 'clickhouse-sink'] },
  fused: { victim: ['fused'], rest: ['evaluation', 'clickhouse-sink'] },
};

interface Sample {
  t: number;
  accounted: number;
  served: number;
  rows: number;
}

/** What the run has done so far, sampled twice a second: accounted texts, LLM prompts answered, ClickHouse rows. */
class Progress {
  accounted = 0;
  rows = 0;
  readonly samples: Sample[] = [];
  /** The run returned or failed: the faults stop; sampling goes on until stop(). */
  done = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly llm: LlmEndpoints,
    private readonly countRows: () => Promise<number>,
  ) {}

  served(): number {
    return this.llm.served();
  }

  start(): void {
    const t0 = (this.t0 = Date.now());
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        // While ClickHouse is down the count stays where it was.
        this.rows = await this.countRows().catch(() => this.rows);
        this.samples.push({ t: Date.now() - t0, accounted: this.accounted, served: this.served(), rows: this.rows });
      })().finally(() => (busy = false));
    }, 500);
  }

  private t0 = Date.now();
  now(): number {
    return Date.now() - this.t0;
  }

  endRun(): void {
    this.done = true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.done = true;
  }

  /** Resolves true when cond() holds, false when the run ended first. */
  async until(cond: () => boolean, pollMs = 100): Promise<boolean> {
    while (!this.done) {
      if (cond()) return true;
      await sleep(pollMs);
    }
    return false;
  }

  /**
   * Seconds from a fault's end until the run moved again: the LLM answering again, and after that new metric rows in
   * ClickHouse (one per synthesized text, written by the stage that did the work and stored by the sink). Rows, not
   * the accounted count: in a run of several rounds a text is accounted for only once its collection's last round is
   * done, so that count stands still for the whole first round. The run's end when it never moved again.
   */
  recoveredAfter(endMs: number, runEndMs: number): number {
    return Math.max(0, ((this.movedAt(endMs) ?? runEndMs) - endMs) / 1000);
  }

  /** When (ms into the run) the run moved again after endMs, by the samples so far; undefined while it has not. */
  movedAt(endMs: number): number | undefined {
    const before = (t: number) => [...this.samples].reverse().find((s) => s.t <= t) ?? { t, accounted: 0, served: 0, rows: 0 };
    const atEnd = before(endMs);
    const working = this.samples.find((s) => s.t > endMs && s.served > atEnd.served);
    return working && this.samples.find((s) => s.t > working.t && s.rows > before(working.t).rows)?.t;
  }
}

interface Fault {
  kind: string;
  startMs: number;
  endMs: number;
  /** Measured by the fault itself (a sink kill: until the sink wrote again), rather than from the run's progress. */
  recoverMs?: number;
}

interface FaultContext {
  c: ChaosCase;
  stack: PrivateStack;
  llm: LlmEndpoints;
  victim: StageProcess;
  /** stage-host-cut: the victim's own host. */
  host?: StageHost;
  /** trainer-kill: the trainer sink beside the run. */
  sink?: SinkUnderFire;
  progress: Progress;
  rand: () => number;
  notes: string[];
  log: (line: string) => void;
}

/** Waits until the LLM has answered this share of the run's texts (or the run ended). */
const reached = (x: FaultContext, share: number) => x.progress.until(() => x.progress.served() >= share * x.c.texts);

/** Kills the stage process that calls the LLM x.c.kills times, restarting it at once each time. */
async function killStage(x: FaultContext): Promise<Fault[]> {
  const faults: Fault[] = [];
  // Kills land between 5% and 70% of the prompts, so that even the last one finds work left to interrupt.
  const shares = Array.from({ length: x.c.kills }, () => 0.05 + 0.65 * x.rand()).sort((a, b) => a - b);
  for (const [i, share] of shares.entries()) {
    if (!(await reached(x, share))) break;
    const startMs = x.progress.now();
    await x.victim.kill();
    x.victim.start();
    const endMs = x.progress.now();
    faults.push({ kind: `kill ${i + 1}`, startMs, endMs });
    x.log(`kill ${i + 1}/${x.c.kills} at ${(startMs / 1000).toFixed(1)} s (${x.progress.served()} prompts answered); restarted`);
    // The next kill comes once the run has moved again, so that each kill's recovery is its own.
    if (!(await x.progress.until(() => x.progress.movedAt(endMs) !== undefined))) break;
  }
  if (faults.length < x.c.kills) x.notes.push(`${faults.length} of ${x.c.kills} kills happened before the run ended`);
  return faults;
}

/**
 * Kills the trainer sink x.c.sinkKills times, each once it has written batches and while the run still goes on: in the
 * second half of the prompts, when the last round's collections reach the mix.
 */
async function killSink(x: FaultContext): Promise<Fault[]> {
  const sink = x.sink!;
  const n = x.c.sinkKills ?? 1;
  const faults: Fault[] = [];
  const shares = Array.from({ length: n }, (_, i) => 0.5 + (0.35 * (i + x.rand())) / n);
  for (const [i, share] of shares.entries()) {
    const since = sink.tokensEnd;
    // Batches written since its last start, so that every kill interrupts a sink that was working.
    if (!(await x.progress.until(() => x.progress.served() >= share * x.c.texts && sink.tokensEnd > since))) break;
    const k = await sink.killAndRestart(() => x.progress.now());
    faults.push({ kind: `trainer sink kill ${i + 1}`, startMs: k.startMs, endMs: k.endMs, recoverMs: k.recoverMs });
    x.log(`trainer sink kill ${i + 1}/${n} at ${(k.startMs / 1000).toFixed(1)} s (${x.progress.served()} prompts answered); restarted, writing again ${(k.recoverMs / 1000).toFixed(1)} s later`);
  }
  return faults;
}

/** Each scenario injects its faults while the run goes on and returns them; it stops early when the run ends. */
const INJECT: Record<Scenario, (x: FaultContext) => Promise<Fault[]>> = {
  'stage-kill': killStage,
  async 'trainer-kill'(x) {
    const [stage, sink] = await Promise.all([killStage(x), killSink(x)]);
    return [...stage, ...sink].sort((a, b) => a.startMs - b.startMs);
  },
  async 'broker-kill'(x) {
    if (!(await reached(x, 0.3))) return [];
    const startMs = x.progress.now();
    await x.stack.kill('kafka');
    x.log(`broker killed at ${(startMs / 1000).toFixed(1)} s; restarting it`);
    const seconds = await x.stack.restart();
    x.notes.push(`broker back (healthy) ${seconds.toFixed(1)} s after its kill`);
    return [{ kind: 'broker killed', startMs, endMs: x.progress.now() }];
  },
  async 'llm-outage'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    for (let i = 0; i < x.llm.urls.length; i++) await x.llm.down(i);
    x.log(`LLM down at ${(startMs / 1000).toFixed(1)} s for ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    for (let i = 0; i < x.llm.urls.length; i++) await x.llm.back(i);
    return [{ kind: `all LLM endpoints down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'llm-endpoint-lost'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    await x.llm.down(1);
    x.log(`LLM endpoint 2 of 2 down for good at ${(startMs / 1000).toFixed(1)} s`);
    // It never comes back: the fault "ends" when it starts, and recovery is the pool going on with the other one.
    return [{ kind: 'one of two LLM endpoints down for good', startMs, endMs: startMs }];
  },
  async 'clickhouse-outage'(x) {
    if (!(await reached(x, 0.1))) return [];
    const startMs = x.progress.now();
    // Killed, not terminated: a SIGTERMed 18.16 server can go on answering a busy connection for many seconds.
    await x.stack.kill('clickhouse');
    x.log(`ClickHouse killed at ${(startMs / 1000).toFixed(1)} s, back in ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    await x.stack.restart();
    return [{ kind: `ClickHouse down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'registry-outage'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    await x.stack.kill('schema-registry');
    x.log(`schema registry killed at ${(startMs / 1000).toFixed(1)} s, back in ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    await x.stack.restart();
    return [{ kind: `schema registry down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'stage-host-cut'(x) {
    if (!x.host) throw new Error('stage-host-cut: the stage process has no host namespace');
    if (!(await reached(x, 0.3))) return [];
    const startMs = x.progress.now();
    x.host.cut(true);
    x.log(`stage host ${x.host.host.address} cut off the network at ${(startMs / 1000).toFixed(1)} s for ${x.c.outageSeconds} s`);
    try {
      await sleep(x.c.outageSeconds * 1000);
    } finally {
      x.host.cut(false);
    }
    return [{ kind: `stage host cut off ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
};

/** Per topic of the chain, how many of the run's keys are there more than once (committed records only). */
async function doubledKeys(kafka: Kafka, t: PipelineTopics, runId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const topic of [t.requests, t.results, t.pool, t.augmented, t.mixed]) {
    const seen = new Map<string, number>();
    await scanToEnd(kafka, topic, (messages) => {
      for (const m of messages) {
        const key = m.key?.toString() ?? '';
        if (runOfKey(key) === runId) seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    });
    out[topic.slice(t.prefix.length + 1)] = [...seen.values()].filter((n) => n > 1).length;
  }
  return out;
}

function writeCorpus(path: string, n: number): void {
  const lines: string[] = [];
  for (const [i, t] of sampleTexts(n, { runId: '', bytes: 200, prefix: 'doc' }).entries()) lines.push(JSON.stringify({ id: t.id, text: t.text.slice(0, 120 + ((i * 37) % 80)) }));
  writeFileSync(path, lines.join('\n') + '\n');
}

async function runCase(c: ChaosCase, o: ChaosOptions, stack: PrivateStack, logsDir: string, logger: Logger, index: number): Promise<ScenarioResult> {
  const tag = `${c.scenario}-${c.topology}-${c.exactlyOnce ? 'eo' : 'alo'}`;
  const id = randomUUID().slice(0, 6);
  const prefix = `chaos-${tag}-${id}`;
  const runId = `chaos-${tag}-${id}`;
  const notes: string[] = [];
  const log = (l: string) => o.log(`[${tag}] ${l}`);
  const corpus = join(logsDir, `${tag}-${id}.jsonl`);
  const short = (p: StageProcess) => p.name.slice(tag.length + id.length + 2);
  writeCorpus(corpus, c.texts);

  const llm = await LlmEndpoints.start(c.scenario === 'llm-endpoint-lost' ? 2 : 1);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...endpointsEnv(stack.endpoints),
    IPT_EXACTLY_ONCE: String(c.exactlyOnce),
    IPT_SESSION_TIMEOUT_MS: String(o.sessionTimeoutMs),
    IPT_LOG_LEVEL: process.env.IPT_LOG_LEVEL ?? 'warn',
  };
  delete env.IPT_TOPIC_PREFIX;
  delete env.IPT_TOPOLOGY;
  const common = ['--prefix', prefix, '--partitions', String(o.partitions), '--topology', c.topology, ...(o.llmTimeoutMs ? ['--timeout-ms', String(o.llmTimeoutMs)] : [])];
  const [victimPort, restPort, sinkPort] = await freePorts(3);
  const trainerKill = c.scenario === 'trainer-kill';
  let sink: SinkUnderFire | undefined;
  // stage-host-cut: the victim runs on a host of its own and reaches the services through it.
  const host =
    c.scenario === 'stage-host-cut'
      ? await stageHost(stack, llm.urls).catch(async (err: Error) => {
          await llm.stop();
          throw err;
        })
      : undefined;
  const victimEnv = host ? { ...env, ...host.env } : env;
  const victimLlm = ['--llm-url', (host?.llmUrls ?? llm.urls).join(',')];
  const victim = new StageProcess(`${tag}-${id}-${LAYOUT[c.topology].victim.join('+')}`, [...common, ...victimLlm, '--stages', LAYOUT[c.topology].victim.join(',')], victimEnv, logsDir, victimPort!, host?.host);
  const rest = new StageProcess(`${tag}-${id}-rest`, [...common, '--llm-url', llm.urls.join(','), '--stages', LAYOUT[c.topology].rest.join(',')], env, logsDir, restPort!);
  if (host) notes.push(`${short(victim)} on host ${host.host.name} (${host.host.address})`);
  const forget = onInterrupt(async () => {
    await Promise.allSettled([victim.kill(), rest.kill(), sink?.close()]);
    await host?.close();
    await llm.stop();
  });

  const values = { prefix, partitions: String(o.partitions), rounds: String(o.rounds), 'length-estimate': 'words', run: runId, 'llm-url': llm.urls.join(','), topology: c.topology };
  const pipeline = pipelineOptions('chaos', values, env);
  const ch = clickhouseClient(pipeline.clickhouse.url, pipeline.clickhouse.database);
  const countRows = async () => Number((await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM synthesis_metrics WHERE run_id = ${sqlString(runId)}`))[0]?.n ?? 0);
  const progress = new Progress(llm, countRows);
  const rand = random(o.seed + index);
  let summary: PipelineRunSummary | undefined;
  let audit: AuditReport | undefined;
  let faults: Fault[] = [];
  let trainer: TrainerFigures | undefined;
  let runMs = 0;
  const kafka = createKafka({ brokers: stack.endpoints.brokers, clientId: 'ipt-chaos-audit', logger });
  const serde = new AvroSerde(stack.endpoints.registryUrl);
  try {
    // Before anything starts: a missing trainer environment fails the scenario at once, naming what to install.
    const tools = trainerKill ? trainerTools(o.trainer) : undefined;
    // Created here, once: two processes creating a fresh prefix's topics at the same moment can fail at start-up
    // (one sees "already exists" and goes on before the other's partitions have leaders).
    await ensurePipelineTopics({ runtime: pipeline.runtime, prefix, partitions: o.partitions, logger });
    log(`starting stage processes (${LAYOUT[c.topology].victim.join(',')} | ${LAYOUT[c.topology].rest.join(',')})`);
    rest.start();
    victim.start();
    // trainer-kill: the trainer sink as a process of its own beside the stages, reading the run's mixed stream.
    if (tools) sink = await SinkUnderFire.start({ name: `${tag}-${id}-trainer-sink`, prefix, tools, env, logsDir, metricsPort: sinkPort!, kafka });
    await Promise.all([rest.ready(), victim.ready(), sink?.proc.ready()]);
    // A stage process that exits by itself (a stage that kept crashing) is restarted, and counted.
    rest.supervise();
    victim.supervise();
    progress.start();
    const run = runPipeline({
      input: corpus,
      settings: runSettings('chaos', values),
      pipeline,
      startStages: false,
      timeoutMs: o.runTimeoutMs,
      log: (line) => {
        const m = /: (\d+)\/(\d+) texts accounted for/.exec(line);
        if (m) {
          const n = Number(m[1]);
          // A line per tenth of the run, not per batch.
          if (Math.floor((10 * n) / c.texts) > Math.floor((10 * progress.accounted) / c.texts)) log(`${n}/${c.texts} texts accounted for (${(progress.now() / 1000).toFixed(0)} s)`);
          progress.accounted = n;
        } else log(line);
      },
      logger,
    });
    // Handled at once: a fault that cannot be injected (a service that does not come back) must not crash the suite.
    const injected = INJECT[c.scenario]({ c, stack, llm, victim, host, sink, progress, rand, notes, log }).catch((err: Error) => {
      notes.push(`injecting the fault failed: ${err.message.slice(0, 400)}`);
      return [] as Fault[];
    });
    const outcome = await run.then(
      (s) => ({ ok: true as const, s }),
      (err: Error) => ({ ok: false as const, err }),
    );
    runMs = progress.now();
    progress.endRun();
    faults = await injected;
    if (outcome.ok) summary = outcome.s;
    else {
      notes.push(`run failed: ${outcome.err.message.slice(0, 400)}`);
      // The run gave up, the stages need not have: with the faults over, give the sink a minute to store what it
      // holds, so that the audit tells a lost row from a run that stopped waiting for it.
      const t0 = Date.now();
      const rowsNow = async () => Number((await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM synthesis_metrics FINAL WHERE run_id = ${sqlString(runId)}`).catch(() => [{ n: '-1' }]))[0]?.n ?? 0);
      const before = await rowsNow();
      let rows = before;
      while (rows < c.texts && Date.now() - t0 < 60_000) {
        await sleep(1000);
        rows = await rowsNow();
      }
      notes.push(`after the failed run the stages went on: ClickHouse rows ${before} → ${rows} within ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      // Recovery is then measured up to the end of that wait.
      runMs = progress.now();
    }
    progress.stop();
    for (const p of [victim, rest]) {
      p.supervise(false);
      for (const e of p.unplannedExits) notes.push(`${short(p)} exited by itself (code ${e.code}${e.signal ? `, ${e.signal}` : ''}) and was restarted: ${e.lastLines.slice(-600)}`);
    }
    // Stopped before the audit, so that nothing they still write is missed; the graceful stop's time is a figure too.
    for (const p of [victim, rest]) {
      const s = await p.stop();
      notes.push(`SIGTERM: ${short(p)} stopped in ${s.seconds.toFixed(1)} s${s.killed ? ' (killed after the grace period)' : s.code ? ` (exit ${s.code})` : ''}`);
    }
    audit = await auditRun({ kafka, serde, topics: pipelineTopics(prefix), clickhouse: ch, runId });
    // Doubles with exactly-once should not happen: say in which topic they first appear, for whoever looks into it.
    if (c.exactlyOnce && audit.mixed.duplicated > 0) notes.push(`keys present more than once, by topic: ${JSON.stringify(await doubledKeys(kafka, pipelineTopics(prefix), runId))}`);
    if (sink && tools) {
      trainer = await finishTrainerKill({ sink, planned: c.sinkKills ?? 1, kafka, serde, runId, tools, endpoints: stack.endpoints, env, dir: trainerDir(logsDir, `${tag}-${id}`), log });
    }
  } catch (err) {
    notes.push(`scenario failed: ${(err as Error).message.slice(0, 600)}`);
  } finally {
    progress.stop();
    await Promise.allSettled([victim.kill(), rest.kill(), sink?.close()]);
    await host?.close();
    await llm.stop();
    await ch.close();
    forget();
  }

  const endMs = runMs || progress.now();
  // The samples behind the recovery figures, for a closer look (kept with --logs).
  writeFileSync(join(logsDir, `${tag}-${id}-progress.json`), JSON.stringify({ faults, samples: progress.samples }));
  const measured = faults.map((f) => ({ kind: f.kind, startS: f.startMs / 1000, endS: f.endMs / 1000, recoverS: f.recoverMs !== undefined ? f.recoverMs / 1000 : progress.recoveredAfter(f.endMs, endMs) }));
  const lost = audit?.lost ?? c.texts;
  const duplicated = audit?.mixed.duplicated ?? 0;
  if (audit && audit.lostIds.length) notes.push(`lost, e.g.: ${audit.lostIds.slice(0, 5).join(', ')}`);
  if (audit && audit.mixed.duplicatedIds.length) notes.push(`duplicated in the mix, e.g.: ${audit.mixed.duplicatedIds.slice(0, 5).join(', ')}`);
  if (audit && audit.deadLettered > 0) notes.push(`dead-lettered: ${summary?.deadLetters.slice(0, 3).map((d) => `${d.id} (${d.stage}): ${d.reason}`).join('; ') ?? audit.deadLettered}`);
  if (audit && !audit.ok) notes.push(`audit: missing from mix ${audit.mixed.missingFromMix}, metric events missing ${audit.metrics.missingEvents}, rows missing ${audit.metrics.missingRows}`);
  notes.push(`LLM prompts answered: ${llm.served()}`);
  // The product's goals decide `ok`: nothing lost, nothing doubled with exactly-once, every metric row stored once, and
  // an LLM fault within the deadline costs time, not dead letters. A run that failed without losing anything, or a
  // stage process that had to be restarted, is a problem to fix but not a lost text.
  const problems: string[] = [];
  const goal = (holds: boolean, problem: string) => holds || void problems.push(problem);
  const okGoals = [
    goal(audit !== undefined, 'no audit: the scenario did not get that far'),
    goal(faults.length > 0, 'no fault was injected'),
    goal(lost === 0, `${lost} texts lost`),
    goal(!c.exactlyOnce || duplicated === 0, `${duplicated} texts duplicated with exactly-once`),
    goal(!audit || audit.ok, 'the audit found texts missing from the mix, or metric events or rows missing'),
    goal(!audit || audit.metrics.extraRows === 0, `${audit?.metrics.extraRows} extra ClickHouse rows`),
    goal(!(c.scenario === 'llm-outage' || c.scenario === 'llm-endpoint-lost') || audit?.deadLettered === 0, `${audit?.deadLettered} texts dead-lettered by an LLM fault within the deadline`),
    // trainer-kill: the stages under fire too, and the sink's batches and the trainer's resume exact.
    goal(!trainerKill || faults.some((f) => f.kind.startsWith('kill ')), 'no stage process was killed'),
    goal(!trainerKill || trainer?.ok === true, trainer ? `trainer: ${trainer.problems.join('; ')}` : 'trainer: the sink and trainer checks did not run'),
  ].every(Boolean);
  if (!summary) problems.push('the bounded run did not return its summary (see notes)');
  const unplannedExits = victim.unplannedExits.length + rest.unplannedExits.length;
  if (unplannedExits) problems.push(`${unplannedExits} stage process exit(s) nobody asked for`);
  if (trainer?.ok) problems.push(...trainer.problems);
  const ok = okGoals;
  return {
    scenario: c.scenario,
    topology: c.topology,
    exactlyOnce: c.exactlyOnce,
    texts: c.texts,
    ingested: audit?.texts ?? summary?.ingested ?? 0,
    accounted: audit?.accounted ?? 0,
    lost,
    deadLettered: audit?.deadLettered ?? summary?.deadLettered ?? 0,
    duplicated,
    mixedCopies: audit?.mixed.copies ?? 0,
    metricRows: audit?.metrics.clickhouseRows ?? 0,
    metricRowsExpected: audit?.metrics.expected ?? 0,
    extraRows: audit?.metrics.extraRows ?? 0,
    unplannedExits,
    runCompleted: summary !== undefined,
    faults: measured.map((f) => ({ ...f, startS: round1(f.startS), endS: round1(f.endS), recoverS: round1(f.recoverS) })),
    recoverSeconds: measured.length ? round1(Math.max(...measured.map((f) => f.recoverS))) : null,
    seconds: round1((summary?.seconds ?? endMs / 1000)),
    ok,
    problems,
    notes,
    ...(trainer ? { trainer } : {}),
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** A result for a case that could not run here: it says why, and is not ok. */
function skippedResult(c: ChaosCase, reason: string): ScenarioResult {
  return {
    scenario: c.scenario,
    topology: c.topology,
    exactlyOnce: c.exactlyOnce,
    texts: c.texts,
    ingested: 0,
    accounted: 0,
    lost: 0,
    deadLettered: 0,
    duplicated: 0,
    mixedCopies: 0,
    metricRows: 0,
    metricRowsExpected: 0,
    extraRows: 0,
    unplannedExits: 0,
    faults: [],
    recoverSeconds: null,
    runCompleted: false,
    seconds: 0,
    ok: false,
    problems: [`skipped: ${reason}`],
    notes: [],
    skipped: reason,
  };
}

/**
 * Runs the cases on private stacks of their own, taken down again also when a case or the suite fails: the
 * single-broker stack for most scenarios, a 3-node cluster in network namespaces for the cluster scenarios (each
 * stack only when a case needs it). Results come in the cases' order.
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const results = new Map<number, ScenarioResult>();
  const figures: { cluster: boolean; f: StackFigures }[] = [];
  const indexed = o.cases.map((c, i) => ({ c, i }));
  const groups = [indexed.filter((x) => !needsCluster(x.c)), indexed.filter((x) => needsCluster(x.c))];
  for (const [g, cases] of groups.entries()) {
    if (cases.length === 0 || interrupted()) continue;
    const cluster = g === 1;
    const problem = cluster ? netnsProblem() : undefined;
    if (problem) {
      o.log(`skipping ${[...new Set(cases.map((x) => x.c.scenario))].join(', ')}: it needs network namespaces for a cluster and a stage host, and here ${problem}`);
      for (const x of cases) results.set(x.i, skippedResult(x.c, `no network namespaces here: ${problem}`));
      continue;
    }
    figures.push({ cluster, f: await runOnStack(o, cases, cluster, results) });
  }
  const ordered = [...results.entries()].sort(([a], [b]) => a - b).map(([, r]) => r);
  const ran = ordered.filter((r) => !r.skipped);
  const zero: StackFigures = { startupSeconds: 0, services: {}, downSeconds: 0 };
  return {
    stack: figures[0]?.f ?? zero,
    ...(figures.some((f) => f.cluster) ? { clusterStack: figures.find((f) => f.cluster)!.f } : {}),
    settings: { rounds: o.rounds, partitions: o.partitions, sessionTimeoutMs: o.sessionTimeoutMs, runTimeoutMs: o.runTimeoutMs, seed: o.seed, ...(o.llmTimeoutMs ? { llmTimeoutMs: o.llmTimeoutMs } : {}) },
    scenarios: ordered,
    seconds: round1((Date.now() - started) / 1000),
    // A skipped scenario proves nothing: with nothing run the report is not ok; beside others it is listed as skipped.
    ok: ran.length > 0 && ran.every((r) => r.ok),
  };
}

async function runOnStack(o: ChaosOptions, cases: { c: ChaosCase; i: number }[], cluster: boolean, results: Map<number, ScenarioResult>): Promise<StackFigures> {
  const stack = await startPrivateStack({ log: o.log, brokers: cluster ? CLUSTER_BROKERS : 1 });
  o.log(`private stack${cluster ? ` (${CLUSTER_BROKERS}-node cluster in network namespaces)` : ''} up in ${stack.startup.seconds} s at ${stack.dir}`);
  const logsDir = o.logsDir ?? join(stack.dir, 'chaos-logs');
  mkdirSync(logsDir, { recursive: true });
  // The suite's own clients log to a file: a killed broker makes kafkajs write hundreds of lines.
  const dest = pino.destination({ dest: join(logsDir, 'chaos.log'), sync: false, mkdir: true });
  const logger = pino({ name: 'ipt-chaos', level: process.env.IPT_LOG_LEVEL ?? 'warn' }, dest);
  let downSeconds = 0;
  try {
    for (const { c, i } of cases) {
      if (interrupted()) break;
      o.log(`scenario ${i + 1}/${o.cases.length}: ${c.scenario}, ${c.topology}, exactly-once ${c.exactlyOnce ? 'on' : 'off'}, ${c.texts} texts`);
      const r = await runCase(c, o, stack, logsDir, logger, i);
      o.log(`  → ${r.ok ? 'ok' : 'FAILED'}: ${r.accounted}/${r.ingested} accounted, ${r.lost} lost, ${r.duplicated} duplicated, ${r.metricRows}/${r.metricRowsExpected} rows, recover ${r.recoverSeconds} s, ${r.seconds} s`);
      results.set(i, r);
    }
  } finally {
    await new Promise<void>((r) => dest.flush(() => r()));
    const t0 = Date.now();
    await stack.dispose();
    downSeconds = (Date.now() - t0) / 1000;
  }
  return { startupSeconds: stack.startup.seconds, services: stack.startup.services, downSeconds };
}
