import { logLevel } from '../../processors/runtime/logger.ts';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { pipelineTopics, runOfKey, type PipelineTopics, type StageName, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import type { Kafka } from 'kafkajs';
import { ensurePipelineTopics } from '../pipeline/start-pipeline.ts';
import { clickhouseClient, queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { sqlString } from '../../connectors/clickhouse/query-filters.ts';
import { endpointsEnv } from '../stack/locate.ts';
import { pipelineOptions, runSettings } from '../cli/pipeline-options.ts';
import { runPipeline, type PipelineRunSummary } from '../jobs/pipeline-run.ts';
import { auditRun, type AuditReport } from '../jobs/audit.ts';
import { freePorts, type PrivateStack } from './private-stack.ts';
import { StageProcess } from './stage-process.ts';
import { LlmEndpoints } from './llm-endpoints.ts';
import { onInterrupt } from './cleanup.ts';
import { stageHost } from './stage-host.ts';
import { finishTrainerKill, SinkUnderFire, trainerDir, trainerTools, type TrainerFigures } from './trainer-kill.ts';
import type { ChaosCase, ChaosOptions } from './chaos-cases.ts';
import { round1, type ScenarioResult } from './chaos-results.ts';
import { Progress } from './run-progress.ts';
import { INJECT, type Fault } from './fault-injectors.ts';

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

export async function runCase(c: ChaosCase, o: ChaosOptions, stack: PrivateStack, logsDir: string, logger: Logger, index: number): Promise<ScenarioResult> {
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
    IPT_LOG_LEVEL: logLevel('warn'),
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
