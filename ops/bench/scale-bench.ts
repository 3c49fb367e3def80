import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { ensurePipelineTopics, startPipeline } from '../pipeline/start-pipeline.ts';
import { stageGroup, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import { endpointsEnv } from '../stack/locate.ts';
import type { StackEndpoints } from '../stack/stack-config.ts';
import { freePorts } from '../chaos/private-stack.ts';
import { StageProcess } from '../chaos/stage-process.ts';
import { PacedCompletionsServer } from './paced-completions-server.ts';
import { waitForGroup } from './group-members.ts';
import { waitForRecords } from './bench-topics.ts';
import { machineCpuMs, processCpuMs } from './cpu-time.ts';
import { median, round } from './stats.ts';
import { settleBetweenSides } from './settle.ts';

export interface ScaleBenchOptions {
  texts: number;
  runs: number;
  /** How long the paced backend takes per completion request. */
  latencyMs: number;
  /** LLM requests one synthesis instance keeps in flight (its handler concurrency and its pool window alike). */
  concurrency: number;
  /** Instance counts to measure; the first is the baseline of the ratios. */
  instances: number[];
  partitions: number;
  textBytes: number;
  log: (line: string) => void;
}

export interface ScaleSide {
  instances: number;
  /** Median over runs of texts / (last result's timestamp − the backend's first request). */
  textsPerSec: number;
  perInstanceTextsPerSec: number;
  /** This side's median over the baseline's (the first instance count's). */
  ratio: number;
  runs: number[];
  /** Most requests the backend had in flight at once, per run: instances × concurrency when the instances are the limit. */
  peakInFlight: number[];
  /** Results beyond one per text, per run (0 expected: nothing is killed here). */
  duplicates: number[];
  /** The busiest instance's texts over an even share, per run (partitions hold texts by key hash, not evenly). */
  imbalance: number[];
  /** The synthesis processes' CPU time per text (ms, median), and the whole machine's busy share while measuring. */
  cpuMsPerText: number;
  machineBusy: number;
}

export interface ScaleBenchResult {
  bench: 'scale';
  texts: number;
  textBytes: number;
  runs: number;
  latencyMs: number;
  concurrencyPerInstance: number;
  partitions: number;
  /** What one instance can reach at most: concurrency / latency. */
  ceilingPerInstance: number;
  sides: ScaleSide[];
  /** Ratio to one instance, by instance count (as a string key). */
  ratios: Record<string, number>;
}

interface Measured {
  rate: number;
  peakInFlight: number;
  duplicates: number;
  imbalance: number;
  cpuMs: number;
  machineBusy: number;
}

/**
 * Texts per second through the synthesis stage with 1, 2 and 4 instances: each `ipt pipeline up --stages synthesis`,
 * a process of its own in the stage's consumer group, keeps `concurrency` requests in flight to a paced backend that
 * answers each after latencyMs however many are in flight, so one instance's rate is bounded by concurrency / latency
 * and the backend is never the limit. Templating runs in this process and feeds the requests topic far faster than
 * synthesis drains it. The instances join first and the group settles (each holds partitions) before any text is
 * written, so the rate — texts over the time from the backend's first request to the last result written — counts no
 * join or rebalance. Sides rotate from run to run so that none always runs first.
 */
export async function scaleBench(cfg: RuntimeConfig, stack: StackEndpoints, logger: Logger, opts: ScaleBenchOptions): Promise<ScaleBenchResult> {
  const kafka = createKafka({ brokers: cfg.brokers, clientId: 'ipt-bench-scale', logger });
  const serde = new AvroSerde(cfg.registryUrl);
  const backend = new PacedCompletionsServer(opts.latencyMs);
  const url = await backend.start();
  const logDir = mkdtempSync(join(tmpdir(), 'ipt-bench-scale-'));
  const measured = new Map<number, Measured[]>(opts.instances.map((n) => [n, []]));
  let finished = false;
  try {
    for (let r = 0; r < opts.runs; r++) {
      const shift = r % opts.instances.length;
      const order = [...opts.instances.slice(shift), ...opts.instances.slice(0, shift)];
      for (const n of order) {
        await settleBetweenSides();
        const m = await measureSide(n, { kafka, serde, cfg, stack, logger, backend, url, logDir, opts });
        measured.get(n)!.push(m);
        opts.log(`bench scale: run ${r + 1}/${opts.runs}, ${n} instance(s): ${Math.round(m.rate)} texts/s (peak ${m.peakInFlight} in flight, ${round(m.cpuMs / opts.texts, 2)} ms CPU per text, machine ${Math.round(m.machineBusy * 100)}% busy)`);
      }
    }
    finished = true;
  } finally {
    await backend.stop();
    // The instances' logs are kept when something failed.
    if (finished) rmSync(logDir, { recursive: true, force: true });
    else opts.log(`bench scale: the synthesis instances' logs are in ${logDir}`);
  }
  const base = median(measured.get(opts.instances[0]!)!.map((m) => m.rate));
  const sides: ScaleSide[] = opts.instances.map((n) => {
    const ms = measured.get(n)!;
    const rate = median(ms.map((m) => m.rate));
    return {
      instances: n,
      textsPerSec: Math.round(rate),
      perInstanceTextsPerSec: Math.round(rate / n),
      ratio: round(rate / base, 2),
      runs: ms.map((m) => Math.round(m.rate)),
      peakInFlight: ms.map((m) => m.peakInFlight),
      duplicates: ms.map((m) => m.duplicates),
      imbalance: ms.map((m) => round(m.imbalance, 2)),
      cpuMsPerText: round(median(ms.map((m) => m.cpuMs / opts.texts)), 2),
      machineBusy: round(median(ms.map((m) => m.machineBusy)), 2),
    };
  });
  return {
    bench: 'scale',
    texts: opts.texts,
    textBytes: opts.textBytes,
    runs: opts.runs,
    latencyMs: opts.latencyMs,
    concurrencyPerInstance: opts.concurrency,
    partitions: opts.partitions,
    ceilingPerInstance: Math.round((opts.concurrency * 1000) / opts.latencyMs),
    sides,
    ratios: Object.fromEntries(sides.map((s) => [String(s.instances), s.ratio])),
  };
}

interface SideContext {
  kafka: Kafka;
  serde: AvroSerde;
  cfg: RuntimeConfig;
  stack: StackEndpoints;
  logger: Logger;
  backend: PacedCompletionsServer;
  url: string;
  logDir: string;
  opts: ScaleBenchOptions;
}

/** One measurement: n synthesis processes on a fresh prefix, the texts templated here, the results' rate. */
async function measureSide(n: number, c: SideContext): Promise<Measured> {
  // An admin client per side: kafkajs keeps asking for the metadata of every topic a client looked at, and a side's
  // topics are deleted at its end.
  const admin = c.kafka.admin();
  await admin.connect();
  try {
    return await measureWith(n, { ...c, admin });
  } finally {
    await admin.disconnect();
  }
}

async function measureWith(n: number, x: SideContext & { admin: Admin }): Promise<Measured> {
  const { opts } = x;
  const id = randomUUID().slice(0, 8);
  const prefix = `bench-scale-${id}-x${n}`;
  const topics = await ensurePipelineTopics({ runtime: x.cfg, prefix, partitions: opts.partitions, logger: x.logger });
  const env: NodeJS.ProcessEnv = { ...process.env, ...endpointsEnv(x.stack), IPT_CONCURRENCY: String(opts.concurrency), IPT_LOG_LEVEL: 'warn' };
  delete env.IPT_TOPIC_PREFIX;
  delete env.IPT_TOPOLOGY;
  const args = ['--stages', 'synthesis', '--prefix', prefix, '--partitions', String(opts.partitions), '--llm-url', x.url, '--concurrency', String(opts.concurrency), '--retries', '0'];
  const ports = await freePorts(n);
  // Distinct client and instance ids: members can be told apart, and transactional ids would not fence each other.
  const procs = ports.map((port, i) => new StageProcess(`${prefix}-${i}`, args, { ...env, IPT_CLIENT_ID: `${prefix}-${i}`, IPT_INSTANCE_ID: `${prefix}-${i}` }, x.logDir, port));
  let templating: { stop(): Promise<void> } | undefined;
  try {
    for (const p of procs) p.start();
    await Promise.all(procs.map((p) => p.ready()));
    const group = await waitForGroup(x.admin, stageGroup(topics, 'synthesis'), (ms) => ms.length === n && ms.every((m) => m.partitions > 0));

    await writeTexts(x, topics, opts, id);
    x.backend.resetCounts();
    const cpu0 = procs.map((p) => processCpuMs(p.pid));
    const machine0 = machineCpuMs();
    templating = await startPipeline({
      runtime: x.cfg,
      prefix,
      partitions: opts.partitions,
      llm: { endpoints: [], concurrency: 1, retries: 0, timeoutMs: 10_000 },
      evaluation: { model: 'paced', maxNewTokens: 400, temperature: 0 },
      clickhouse: { url: '', database: 'unused' },
      stages: ['templating'],
      logger: x.logger,
    });
    await waitForRecords(x.admin, topics.results, opts.texts);
    const machine1 = machineCpuMs();
    const cpuMs = procs.reduce((s, p, i) => s + processCpuMs(p.pid) - cpu0[i]!, 0);
    const peakInFlight = x.backend.peakInFlight;

    const got = await readTopic(x.kafka, topics.results, { count: opts.texts, timeoutMs: 60_000, settleMs: 500 });
    // From the first LLM request to the last result written. Not the span of the results' own timestamps: a chunk's
    // results are produced together at its end, so with one chunk per partition that span would be near zero.
    const lo = x.backend.firstAt ?? Infinity;
    let hi = -Infinity;
    for (const m of got.messages) hi = Math.max(hi, Number(m.timestamp));
    const keys = new Set(got.messages.map((m) => m.key?.toString()));
    if (keys.size < opts.texts) throw new Error(`bench scale: ${keys.size} of ${opts.texts} texts have a result`);
    // A request that failed still has a result (outcome failed) and a dead letter: a rate of failures is no figure.
    const failed = (await x.admin.fetchTopicOffsets(`${stageGroup(topics, 'synthesis')}.dlq`)).reduce((s, o) => s + Number(o.high), 0);
    if (failed > 0) throw new Error(`bench scale: ${failed} requests failed (dead letters in ${stageGroup(topics, 'synthesis')}.dlq); see the instances' logs`);
    // A result lands in the partition of its request (the same key), so each instance's texts are its partitions'.
    const perPartition = new Map<number, number>();
    for (const m of got.messages) perPartition.set(m.partition, (perPartition.get(m.partition) ?? 0) + 1);
    const perInstance = group.members.map((m) => (m.assignment[topics.requests] ?? []).reduce((s, p) => s + (perPartition.get(p) ?? 0), 0));
    return {
      rate: keys.size / Math.max((hi - lo) / 1000, 0.001),
      peakInFlight,
      duplicates: got.messages.length - keys.size,
      imbalance: (Math.max(...perInstance) * n) / got.messages.length,
      cpuMs,
      machineBusy: (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total),
    };
  } finally {
    await templating?.stop();
    await Promise.all(procs.map((p) => p.stop()));
    const created = (await x.admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    await x.admin.deleteTopics({ topics: created }).catch(() => undefined);
    await x.admin.deleteGroups([stageGroup(topics, 'synthesis'), stageGroup(topics, 'templating')]).catch(() => undefined);
  }
}

/** One round of sampled texts as a run, written to the raw topic before any stage reads it. */
async function writeTexts(x: SideContext, topics: PipelineTopics, opts: ScaleBenchOptions, id: string): Promise<void> {
  const texts = sampleTexts(opts.texts, { runId: id, bytes: opts.textBytes }).map((t) => ({ id: t.id, text: t.text, source: t.source }));
  const { run, records } = planRun({ preset: 'none', rounds: 1, seed: 0, model: 'paced', maxModelLen: 1 << 20, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0, runId: `scale-${id}` }, texts);
  const writer = new PipelineWriter(x.kafka, x.serde, topics);
  await writer.start();
  try {
    await writer.writeRun(run);
    await writer.writeTexts(records, run);
  } finally {
    await writer.stop();
  }
}
