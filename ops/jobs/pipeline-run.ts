import { randomUUID } from 'node:crypto';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { readEvaluationRecords } from '../../connectors/files/evaluation-records.ts';
import { messageLimits, oversizedTexts, planRun, PipelineWriter, type InputText, type RunSettings } from '../../connectors/ingest/run-ingest.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { f1ByDataset, metricRowCounts, roundAggregates, type F1Row, type RoundAggregate } from '../../connectors/clickhouse/run-queries.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { ensurePipelineTopics, startPipeline, type PipelineOptions, type RunningPipeline } from '../../processors/pipeline/start-pipeline.ts';
import type { EvaluationRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import { RunMonitor, type DeadLetter } from './run-monitor.ts';
import { writeMixedFile } from '../../connectors/files/mixed-file-sink.ts';
import { extname } from 'node:path';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { checkLlmEndpoints } from '../../connectors/llm/preflight.ts';
import { JobError } from '../../processors/runtime/job-error.ts';

function assertOutputFormat(path: string): void {
  if (!['.jsonl', '.json', '.ndjson', '.parquet'].includes(extname(path).toLowerCase())) throw new Error(`--output ${path}: use a .jsonl or .parquet file`);
}

export interface PipelineRunOptions {
  input: string;
  settings: Omit<RunSettings, 'runId'> & { runId?: string };
  general?: string;
  evaluation?: string;
  /** Write the run's mixed stream, in mix order, to this JSONL or Parquet file. */
  output?: string;
  pipeline: Omit<PipelineOptions, 'logger'>;
  /** false when `ipt pipeline up` already runs the stages elsewhere. */
  startStages: boolean;
  timeoutMs: number;
  log: (line: string) => void;
  logger: Logger;
}

export interface PipelineRunSummary {
  runId: string;
  preset: string;
  rounds: number;
  ingested: number;
  rejected: number;
  rejects: { line: number; reason: string }[];
  augmented: number;
  raw: number;
  deadLettered: number;
  deadLetters: DeadLetter[];
  pairs: number;
  outputTexts: number;
  perRound: { round: number; texts: number; fewShot: number; pairs: number; failed: number; skipped: number; parseSuccess: number; duplicateRate: number; grounding: number }[];
  mixed: { records: number; augmented: number; raw: number; general: number; domainTokens: number; generalTokens: number; generalShare: number };
  metricRows: { synthesis: number; evaluation: number };
  evaluation: F1Row[];
  output?: { path: string; records: number };
  seconds: number;
}

async function readTexts(path: string): Promise<{ texts: InputText[]; lines: number[]; rejects: { line: number; reason: string }[] }> {
  const texts: InputText[] = [];
  const lines: number[] = [];
  const rejects: { line: number; reason: string }[] = [];
  const seen = new Map<string, number>();
  for await (const r of readTextRecords(path)) {
    if (!r.ok) rejects.push({ line: r.line, reason: r.reason });
    else if (seen.has(r.id)) rejects.push({ line: r.line, reason: `${path}:${r.line}: id "${r.id}" already used on line ${seen.get(r.id)}` });
    else {
      seen.set(r.id, r.line);
      texts.push({ id: r.id, text: r.text, source: `${path}:${r.line}` });
      lines.push(r.line);
    }
  }
  return { texts, lines, rejects };
}

/**
 * The bounded form of the pipeline: ingests a file as one run, runs the chain over Kafka until every text of the
 * run is accounted for (converted, kept raw, or dead-lettered), the mixed stream holds every domain text and
 * ClickHouse holds every metric event, then returns one summary.
 */
export async function runPipeline(opts: PipelineRunOptions): Promise<PipelineRunSummary> {
  const started = Date.now();
  const runId = opts.settings.runId ?? `run-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  const read = await readTexts(opts.input);
  const { texts, rejects } = await withoutOversized(opts, runId, read);
  for (const r of rejects) opts.log(`pipeline: rejected ${r.reason}`);
  const { run, records } = planRun({ ...opts.settings, runId }, texts);
  const general = opts.general ? await readTexts(opts.general) : undefined;
  for (const r of general?.rejects ?? []) opts.log(`pipeline: general instructions: rejected ${r.reason}`);
  let evaluations: EvaluationRecord[] = [];
  if (opts.evaluation) {
    for (const e of await readEvaluationRecords(opts.evaluation)) {
      if (e.ok) evaluations.push({ ...e.record, runId });
      else opts.log(`pipeline: evaluation: rejected ${e.reason}`);
    }
  }

  if (opts.output) assertOutputFormat(opts.output);
  return executeRun(opts, { run, records, pool: [], expected: new Set(records.map((r) => r.id)), general: general?.texts, evaluations, rejects }, started);
}

/** Texts too large for the raw topic's max.message.bytes become rejects by line, before the run is planned or written. */
async function withoutOversized(opts: PipelineRunOptions, runId: string, read: Awaited<ReturnType<typeof readTexts>>) {
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  const admin = createKafka({ brokers: opts.pipeline.runtime.brokers, clientId: `${opts.pipeline.runtime.clientId}-run`, logger: opts.logger }).admin();
  await admin.connect();
  const limit = await messageLimits(admin, [topics.raw]).finally(() => admin.disconnect());
  const oversized = oversizedTexts(read.texts, runId, limit.get(topics.raw));
  if (oversized.length === 0) return read;
  const drop = new Set(oversized.map((o) => o.index));
  const rejects = [...read.rejects, ...oversized.map((o) => ({ line: read.lines[o.index]!, reason: `${read.texts[o.index]!.source}: ${o.reason}` }))];
  return { texts: read.texts.filter((_, i) => !drop.has(i)), lines: read.lines.filter((_, i) => !drop.has(i)), rejects: rejects.sort((a, b) => a.line - b.line) };
}

/** What one run puts into the pipeline, and what it expects out. */
export interface RunInput {
  run: RunConfig;
  records: RawTextRecord[];
  /** Previous-round collections to seed the round pool with (a run that starts at a later round). */
  pool: RoundCollectionRecord[];
  /** Raw-text ids that must each end converted, raw or dead-lettered. */
  expected: Set<string>;
  general?: InputText[];
  evaluations: EvaluationRecord[];
  rejects: { line: number; reason: string }[];
}

/** Writes a run's records, runs the chain (or lets running stages take it), waits until it is accounted for, and summarises it. */
export async function executeRun(opts: Pick<PipelineRunOptions, 'pipeline' | 'startStages' | 'timeoutMs' | 'log' | 'logger' | 'output'>, input: RunInput, started = Date.now()): Promise<PipelineRunSummary> {
  const { run, records, expected, evaluations } = input;
  const runId = run.runId;
  const { runtime, clickhouse } = opts.pipeline;
  // Nothing is written before the stages are known to be able to work.
  if (opts.startStages) await checkStagesCanWork(opts.pipeline.llm, run, opts.log);
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  await migrate(clickhouse.url, clickhouse.database);
  const kafka = createKafka({ brokers: runtime.brokers, clientId: `${runtime.clientId}-run`, logger: opts.logger });
  const serde = new AvroSerde(runtime.registryUrl);
  const writer = new PipelineWriter(kafka, serde, topics);
  const monitor = new RunMonitor(kafka, serde, topics, runId);
  const ch = clickhouseClient(clickhouse.url, clickhouse.database);
  let pipeline: RunningPipeline | undefined;
  // SIGTERM/SIGINT end the wait; the finally below stops the stages gracefully (each commits its batch in flight),
  // so the run's records stay consistent in Kafka for 'pipeline up' to finish and 'ipt audit' to reconcile.
  let interrupted: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await writer.start();
    await writer.writeRun(run);
    if (input.general) await writer.writeGeneral(runId, input.general);
    if (opts.startStages) pipeline = await startPipeline({ ...opts.pipeline, logger: opts.logger });
    await monitor.start();
    await writer.writeTexts(records, run);
    await writer.writePool(input.pool);
    await writer.writeEvaluations(evaluations);
    opts.log(`pipeline: run ${runId}: ${records.length} texts ingested (${run.convertedTexts} to convert in ${run.rounds} round(s), from round ${run.startRound}), ${input.rejects.length} rejected`);

    const deadline = started + opts.timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    // A stage of this process that stopped for good ends the wait at once: the run cannot finish without it.
    const stagesAlive = () => {
      if (interrupted) {
        throw new JobError(`interrupted by ${interrupted}: run ${runId} stopped with ${monitor.accounted(expected)}/${expected.size} texts accounted for; its records stay in Kafka (\`ipt pipeline up\` finishes it, \`ipt audit --run ${runId}\` reconciles it)`);
      }
      const dead = pipeline?.processors.find((p) => p.failure);
      if (dead) throw new JobError(`stage ${dead.name} stopped: ${dead.failure!.message}`);
    };
    let last = -1;
    await monitor.until(
      () => {
        stagesAlive();
        const n = monitor.accounted(expected);
        if (n !== last) {
          last = n;
          opts.log(`pipeline: ${n}/${expected.size} texts accounted for`);
        }
        return n === expected.size;
      },
      left(),
      () => `every text to be accounted for (${monitor.accounted(expected)}/${expected.size}; e.g. not yet: ${monitor.unaccounted(expected).join(', ')})`,
    );
    await monitor.until(() => (stagesAlive(), monitor.mixedDomain() >= monitor.domainTexts()), left(), () => `the mixed stream (${monitor.mixedDomain()}/${monitor.domainTexts()} domain texts)`);
    const events = (kind: string) => [...monitor.metrics.values()].filter((m) => m.kind === kind).length;
    const expectedEvaluations = evaluations.reduce((s, e) => s + (e.examples.length > 0 ? 2 : 1), 0) - evaluationDeadLetters(monitor, evaluations);
    // Each text sent to synthesis has one metric event, unless it was dead-lettered before its result existed.
    // The ids still waiting shrink as events arrive, so a long run is not re-scanned whole on every batch.
    const synthesized = records.filter((r) => r.convert).length;
    const waiting = new Set(records.filter((r) => r.convert).map((r) => r.id));
    const settled = () => {
      for (const id of waiting) if (monitor.metrics.has(`synthesis/${runId}/${id}`) || monitor.deadLetters.get(id)?.withOutputs === false) waiting.delete(id);
      return synthesized - waiting.size;
    };
    await monitor.until(
      () => (stagesAlive(), settled() === synthesized && events('evaluation') >= expectedEvaluations),
      left(),
      () => `metric events (${settled()}/${synthesized} synthesis, ${events('evaluation')}/${expectedEvaluations} evaluation)`,
    );
    // ClickHouse may be down now (the sink waits it out): its queries are asked again until the run's deadline.
    let outage: string | undefined;
    const ask = async <T>(query: () => Promise<T>): Promise<T> => {
      for (;;) {
        try {
          const v = await query();
          if (outage) opts.log(`pipeline: ClickHouse answers again`);
          outage = undefined;
          return v;
        } catch (err) {
          if (Date.now() > deadline) throw new JobError(`ClickHouse at ${clickhouse.url} did not answer before the run's deadline: ${(err as Error).message}`);
          if (!outage) opts.log(`pipeline: ClickHouse does not answer (${(outage = (err as Error).message)}); asking again`);
          stagesAlive();
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    let rows = await ask(() => metricRowCounts(ch, runId));
    const wantRows = { synthesis: events('synthesis'), evaluation: events('evaluation') };
    while (rows.synthesis < wantRows.synthesis || rows.evaluation < wantRows.evaluation) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ClickHouse: ${JSON.stringify(rows)} of ${JSON.stringify(wantRows)} metric rows stored`);
      stagesAlive();
      await new Promise((r) => setTimeout(r, 250));
      rows = await ask(() => metricRowCounts(ch, runId));
    }
    const summary = summarize(run, expected.size, input.rejects, monitor, expected, rows, await ask(() => roundAggregates(ch, runId)), await ask(() => f1ByDataset(ch, runId)), started);
    if (opts.output) summary.output = { path: opts.output, records: await writeMixedFile(opts.output, monitor.mixed.values()) };
    return summary;
  } finally {
    await Promise.allSettled([monitor.stop(), pipeline?.stop(), writer.stop()]);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await ch.close();
  }
}

/**
 * Before stages start: the LLM endpoints answer, and the server can count tokens when the run's length estimate
 * needs it. A run that cannot work fails here, naming what to fix, instead of dead-lettering every text.
 */
async function checkStagesCanWork(llm: PipelineRunOptions['pipeline']['llm'], run: RunConfig, log: (line: string) => void): Promise<void> {
  if (llm.client || llm.endpoints.length === 0) return;
  const pool = new SynthesisPool({ endpoints: llm.endpoints, model: run.model, timeoutMs: llm.timeoutMs });
  for (const w of await checkLlmEndpoints(pool, { needTokenize: run.lengthEstimate === 'tokens' && !llm.tokenizer, setting: '--llm-url (IPT_LLM_URL)' })) log(`pipeline: ${w}`);
}

function evaluationDeadLetters(monitor: RunMonitor, evaluations: EvaluationRecord[]): number {
  let n = 0;
  for (const e of evaluations) if (monitor.deadLetters.has(e.id)) n += e.examples.length > 0 ? 2 : 1;
  return n;
}

function summarize(
  run: RunConfig,
  ingested: number,
  rejects: { line: number; reason: string }[],
  monitor: RunMonitor,
  expected: Set<string>,
  metricRows: { synthesis: number; evaluation: number },
  rounds: RoundAggregate[],
  evaluation: F1Row[],
  started: number,
): PipelineRunSummary {
  const dead = [...monitor.deadLetters.values()].filter((d) => expected.has(d.id));
  const augmented = [...expected].filter((id) => monitor.convertedIds.has(id)).length;
  const raw = [...expected].filter((id) => monitor.rawIds.has(id)).length;
  const converted = [...monitor.outputs.values()].filter((a) => a.converted);
  const mixed = [...monitor.mixed.values()];
  const tokens = (src: string[]) => mixed.filter((m) => src.includes(m.source)).reduce((s, m) => s + m.tokens, 0);
  const domainTokens = tokens(['augmented', 'raw']);
  const generalTokens = tokens(['general']);
  return {
    runId: run.runId,
    preset: run.preset,
    rounds: run.rounds,
    ingested,
    rejected: rejects.length,
    rejects: rejects.slice(0, 20),
    augmented,
    raw,
    deadLettered: dead.length,
    deadLetters: dead.slice(0, 20),
    pairs: converted.reduce((s, a) => s + a.pairs, 0),
    outputTexts: converted.length,
    perRound: rounds.map((r) => ({
      round: r.round,
      texts: r.texts,
      fewShot: r.few_shot_texts,
      pairs: r.pairs_total,
      failed: r.failed,
      skipped: r.skipped,
      parseSuccess: round3(r.parse_success),
      duplicateRate: round3(r.duplicate_rate),
      grounding: round3(r.grounding_avg),
    })),
    mixed: {
      records: mixed.length,
      augmented: mixed.filter((m) => m.source === 'augmented').length,
      raw: mixed.filter((m) => m.source === 'raw').length,
      general: mixed.filter((m) => m.source === 'general').length,
      domainTokens,
      generalTokens,
      generalShare: domainTokens + generalTokens === 0 ? 0 : round3(generalTokens / (domainTokens + generalTokens)),
    },
    metricRows,
    evaluation: evaluation.map((e) => ({ ...e, f1: round3(e.f1), exact_match: round3(e.exact_match) })),
    seconds: (Date.now() - started) / 1000,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
