import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { TOPOLOGIES, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import type { PipelineRunSummary } from '../../ops/jobs/pipeline-run.ts';
import { endpointsEnv } from '../stack/locate.ts';
import type { StackEndpoints } from '../stack/stack-config.ts';
import { freePorts } from '../chaos/private-stack.ts';
import { PacedCompletionsServer } from './paced-completions-server.ts';
import { ProbedProcess } from './probed-process.ts';
import { writeMemoryCorpus } from './memory-corpus.ts';
import type { MemoryPeaks } from './memory-probe.ts';
import { round } from './stats.ts';

export interface MemoryBenchOptions {
  /** Corpus sizes, each one run of its own. */
  texts: number[];
  topology: Topology;
  rounds: number;
  partitions: number;
  /** LLM requests the stage keeps in flight. */
  concurrency: number;
  /** The `pipeline run` deadline of each size (its --run-timeout-ms). */
  runTimeoutMs: number;
  log: (line: string) => void;
}

/** One process's peaks, in MiB. */
export interface ProcessMemory {
  /** The kernel's high-water mark of resident memory (VmHWM): the figure a container limit meets. */
  peakRssMiB: number;
  /** The largest V8 heap in use seen (sampled every 100 ms). */
  peakHeapUsedMiB: number;
  /** The largest heap seen right after a full collection: the live part of the above (garbage left out). */
  peakLiveHeapMiB: number;
  peakHeapTotalMiB: number;
  /** Buffers outside the V8 heap (kafkajs batches, file chunks). */
  peakExternalMiB: number;
  timeline: MemoryPeaks['timeline'];
}

export interface MemorySize {
  texts: number;
  corpusMiB: number;
  /** The `pipeline run` process: ingest, the run monitor, the summary and output. */
  run?: ProcessMemory;
  /** The stage process: the fused stage (or, staged, the five chained stages). */
  stage?: ProcessMemory;
  /** Evaluation and the ClickHouse sink, in a process of their own so neither is counted above. */
  sink?: ProcessMemory;
  seconds: number;
  textsPerSec: number;
  summary?: Pick<PipelineRunSummary, 'ingested' | 'augmented' | 'raw' | 'deadLettered' | 'pairs' | 'outputTexts'> & { mixedRecords: number; synthesisRows: number };
  /** Why this size did not finish (its peaks are still those reached). */
  error?: string;
}

export interface MemoryBenchResult {
  bench: 'memory';
  topology: Topology;
  rounds: number;
  partitions: number;
  concurrency: number;
  sizes: MemorySize[];
  /** Peak RSS added per text between the two largest finished sizes (bytes per text). */
  growthBytesPerText?: { run: number; stage: number };
}

const MiB = (b: number) => round(b / 2 ** 20, 1);

function memoryOf(p: ProbedProcess): ProcessMemory | undefined {
  const m = p.peaks();
  if (!m) return undefined;
  return { peakRssMiB: MiB(m.vmHwmBytes || m.rssBytes), peakHeapUsedMiB: MiB(m.heapUsedBytes), peakLiveHeapMiB: MiB(m.heapAfterFullGcBytes ?? 0), peakHeapTotalMiB: MiB(m.heapTotalBytes), peakExternalMiB: MiB(m.externalBytes), timeline: m.timeline };
}

/**
 * Peak memory of `pipeline run` and of the stage process at each corpus size: a generated corpus of short texts, a
 * fresh topic prefix and ClickHouse database per size, a completions endpoint that answers at once (no model), the
 * stages in `pipeline up` processes of their own (the stage; evaluation and the ClickHouse sink) and `pipeline run
 * --external` as a third process. Each process carries the memory probe, so each figure is that process's alone.
 */
export async function memoryBench(cfg: RuntimeConfig, stack: StackEndpoints, logger: Logger, opts: MemoryBenchOptions): Promise<MemoryBenchResult> {
  const backend = new PacedCompletionsServer(0);
  const url = await backend.start();
  const dir = mkdtempSync(join(tmpdir(), 'ipt-bench-memory-'));
  const sizes: MemorySize[] = [];
  try {
    for (const n of opts.texts) {
      const size = await measureSize(n, { cfg, stack, logger, url, dir, opts });
      sizes.push(size);
      const fmt = (m?: ProcessMemory) => (m ? `${m.peakRssMiB} MiB RSS, heap ${m.peakHeapUsedMiB} MiB` : 'n/a');
      opts.log(`bench memory: ${n} texts in ${size.seconds} s${size.error ? ` (FAILED: ${size.error})` : ''}: pipeline run ${fmt(size.run)}; stage ${fmt(size.stage)}`);
    }
  } finally {
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const done = sizes.filter((s) => !s.error && s.run && s.stage);
  // Between the two largest sizes: what one more text costs once the fixed part is paid.
  const lo = done[done.length - 2];
  const hi = done[done.length - 1];
  const growth =
    lo && hi && hi.texts > lo.texts
      ? { run: Math.round(((hi.run!.peakRssMiB - lo.run!.peakRssMiB) * 2 ** 20) / (hi.texts - lo.texts)), stage: Math.round(((hi.stage!.peakRssMiB - lo.stage!.peakRssMiB) * 2 ** 20) / (hi.texts - lo.texts)) }
      : undefined;
  return { bench: 'memory', topology: opts.topology, rounds: opts.rounds, partitions: opts.partitions, concurrency: opts.concurrency, sizes, growthBytesPerText: growth };
}

interface SizeContext {
  cfg: RuntimeConfig;
  stack: StackEndpoints;
  logger: Logger;
  url: string;
  dir: string;
  opts: MemoryBenchOptions;
}

async function measureSize(n: number, x: SizeContext): Promise<MemorySize> {
  const { opts } = x;
  const id = randomUUID().slice(0, 8);
  const prefix = `bench-mem-${id}`;
  const database = `ipt_bench_mem_${id}`;
  const corpus = join(x.dir, `corpus-${n}.jsonl`);
  const corpusBytes = await writeMemoryCorpus(corpus, n);
  // The mixed stream written out too, as a run that trains from a file would.
  const output = join(x.dir, `mixed-${n}.jsonl`);
  const env: NodeJS.ProcessEnv = { ...process.env, ...endpointsEnv(x.stack), IPT_CLICKHOUSE_DB: database, IPT_LOG_LEVEL: 'warn' };
  delete env.IPT_TOPIC_PREFIX;
  delete env.IPT_TOPOLOGY;
  delete env.IPT_METRICS_PORT;
  const common = ['--prefix', prefix, '--partitions', String(opts.partitions), '--topology', opts.topology, '--llm-url', x.url];
  const stageNames = TOPOLOGIES[opts.topology].filter((s) => s !== 'evaluation' && s !== 'clickhouse-sink');
  const [stagePort, sinkPort] = await freePorts(2);
  const stage = new ProbedProcess(`stage-${n}`, ['pipeline', 'up', ...common, '--stages', stageNames.join(','), '--concurrency', String(opts.concurrency), '--retries', '0'], env, x.dir, stagePort);
  const sink = new ProbedProcess(`sink-${n}`, ['pipeline', 'up', ...common, '--stages', 'evaluation,clickhouse-sink'], env, x.dir, sinkPort);
  const run = new ProbedProcess(
    `run-${n}`,
    ['pipeline', 'run', ...common, '--external', '--input', corpus, '--output', output, '--rounds', String(opts.rounds), '--length-estimate', 'words', '--model', 'paced', '--run-timeout-ms', String(opts.runTimeoutMs), '--json'],
    env,
    x.dir,
  );
  const t0 = Date.now();
  let error: string | undefined;
  let summary: PipelineRunSummary | undefined;
  try {
    // One after the other: the first creates the topics, which two at once would race for.
    stage.start();
    await stage.ready();
    sink.start();
    await sink.ready();
    x.opts.log(`bench memory: ${n} texts (${MiB(corpusBytes)} MiB of JSONL), prefix ${prefix}`);
    run.start();
    const exit = await run.exited;
    const out = run.stdout().trim();
    if (exit.code !== 0 || out === '') error = `pipeline run exited ${exit.code ?? exit.signal}: ${run.tail(5)}`;
    else {
      summary = JSON.parse(out.split('\n').pop()!) as PipelineRunSummary;
      if (summary.ingested !== n || summary.augmented + summary.raw !== n) error = `the run accounted for ${summary.augmented + summary.raw} of ${n} texts`;
      else if (summary.output?.records !== summary.mixed.records) error = `the output file holds ${summary.output?.records} of ${summary.mixed.records} mixed records`;
    }
  } catch (err) {
    error = (err as Error).message;
  } finally {
    await run.stop();
    await Promise.all([stage.stop(), sink.stop()]);
    await cleanUp(x, prefix, database);
    rmSync(corpus, { force: true });
    rmSync(output, { force: true });
  }
  const seconds = summary?.seconds ?? (Date.now() - t0) / 1000;
  return {
    texts: n,
    corpusMiB: MiB(corpusBytes),
    run: memoryOf(run),
    stage: memoryOf(stage),
    sink: memoryOf(sink),
    seconds: round(seconds, 1),
    textsPerSec: Math.round(n / Math.max(seconds, 0.001)),
    summary: summary && {
      ingested: summary.ingested,
      augmented: summary.augmented,
      raw: summary.raw,
      deadLettered: summary.deadLettered,
      pairs: summary.pairs,
      outputTexts: summary.outputTexts,
      mixedRecords: summary.mixed.records,
      synthesisRows: summary.metricRows.synthesis,
    },
    error,
  };
}

/** The size's topics, consumer groups and ClickHouse database: the shared stack keeps nothing of the benchmark. */
async function cleanUp(x: SizeContext, prefix: string, database: string): Promise<void> {
  const admin = createKafka({ brokers: x.cfg.brokers, clientId: 'ipt-bench-memory', logger: x.logger }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${prefix}.`));
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  const ch = clickhouseClient(x.stack.clickhouseUrl);
  try {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  } catch (err) {
    x.opts.log(`bench memory: could not drop ClickHouse database ${database}: ${(err as Error).message}`);
  } finally {
    await ch.close();
  }
}

/** The result as a table: peak RSS and heap of each process at each size. */
export function memoryTable(r: MemoryBenchResult): string {
  const three = (vs: (string | number)[]) => vs.map((v) => String(v).padStart(7)).join(' ');
  const cell = (m?: ProcessMemory) => three(m ? [m.peakRssMiB, m.peakHeapUsedMiB, m.peakLiveHeapMiB] : ['n/a', 'n/a', 'n/a']);
  const rows = r.sizes.map((s) => `${String(s.texts).padStart(9)}  ${cell(s.run)}  ${cell(s.stage)}  ${cell(s.sink)}  ${String(s.seconds).padStart(7)}  ${s.error ? `FAILED: ${s.error.split('\n')[0]}` : ''}`);
  return [
    `memory: ${r.topology} topology, ${r.rounds} round(s), ${r.partitions} partitions; MiB: peak RSS (VmHWM), peak V8 heap in use, peak live heap (after a full GC)`,
    `${''.padStart(9)}  ${'pipeline run'.padEnd(23)}  ${'stage'.padEnd(23)}  ${'sink'.padEnd(23)}`,
    `${'texts'.padStart(9)}  ${[1, 2, 3].map(() => three(['rss', 'heap', 'live'])).join('  ')}  seconds`,
    ...rows,
    ...(r.growthBytesPerText ? [`peak RSS added per text between the two largest sizes: pipeline run ${r.growthBytesPerText.run} B, stage ${r.growthBytesPerText.stage} B`] : []),
  ].join('\n');
}
