import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { readEvaluationRecords } from '../../connectors/files/evaluation-records.ts';
import { TextFilePlan } from '../../connectors/files/text-file-plan.ts';
import { TextFileScan, type Reject } from '../../connectors/files/text-file-scan.ts';
import { Bits } from '../../connectors/files/compact-ids.ts';
import { MixedSpool } from '../../connectors/files/mixed-spool.ts';
import { messageLimits, PipelineWriter, type InputText, type RunSettings } from '../../connectors/ingest/run-ingest.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { f1ByDataset, metricRowCounts, roundAggregates, type F1Row, type RoundAggregate } from '../../connectors/clickhouse/run-queries.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { ensurePipelineTopics, startPipeline, type PipelineOptions, type RunningPipeline } from '../pipeline/start-pipeline.ts';
import type { EvaluationRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import { RunMonitor, type DeadLetter, type RunTally, type RunTexts } from './run-monitor.ts';
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

/** Rejects as the summary names them: all counted, the first 20 by line kept. */
class FirstRejects {
  count = 0;
  readonly first: Reject[] = [];
  add(r: Reject): void {
    this.count++;
    if (this.first.length === 20 && r.line >= this.first[19]!.line) return;
    const at = this.first.findIndex((x) => x.line > r.line);
    this.first.splice(at < 0 ? this.first.length : at, 0, r);
    if (this.first.length > 20) this.first.pop();
  }
}

/**
 * stdin's JSONL copied to a temporary file: a run reads its input twice (to count and check the texts, then to write
 * them), and holds neither the texts nor their ids in between.
 */
async function stdinCopy(): Promise<{ path: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-stdin-'));
  const path = join(dir, 'stdin.jsonl');
  await pipe(process.stdin, createWriteStream(path));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The bounded form of the pipeline: ingests a file as one run, runs the chain over Kafka until every text of the
 * run is accounted for (converted, kept raw, or dead-lettered), the mixed stream holds every domain text and
 * ClickHouse holds every metric event, then returns one summary. The input is read twice and streamed into the raw
 * topic in batches; the run is followed by text slots and counts, and the mixed stream goes to --output as it
 * arrives: memory does not grow with the input but by a few dozen bytes a text (docs/memory.md).
 */
export async function runPipeline(opts: PipelineRunOptions): Promise<PipelineRunSummary> {
  const started = Date.now();
  const runId = opts.settings.runId ?? `run-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  // A missing file or an unknown format fails here, before any topic is touched.
  for (const path of [opts.input, opts.general]) {
    if (path === undefined || path === '-') continue;
    readTextRecords(path);
    await access(path);
  }
  const copies: { path: string; remove: () => void }[] = [];
  const from = async (path: string | undefined) => (path === '-' ? (copies[copies.push(await stdinCopy()) - 1]!.path) : undefined);
  try {
    const inputFrom = await from(opts.input);
    const rejects = new FirstRejects();
    const plan = await TextFilePlan.create(opts.input, { ...opts.settings, runId }, {
      limit: await rawTopicLimit(opts),
      from: inputFrom,
      onReject: (r) => {
        rejects.add(r);
        opts.log(`pipeline: rejected ${r.reason}`);
      },
    });
    const general = opts.general === undefined ? undefined : await TextFileScan.run(opts.general, { from: await from(opts.general), onReject: (r) => opts.log(`pipeline: general instructions: rejected ${r.reason}`) });
    const evaluations: EvaluationRecord[] = [];
    if (opts.evaluation) {
      for (const e of await readEvaluationRecords(opts.evaluation)) {
        if (e.ok) evaluations.push({ ...e.record, runId });
        else opts.log(`pipeline: evaluation: rejected ${e.reason}`);
      }
    }
    if (opts.output) assertOutputFormat(opts.output);
    const run = plan.run;
    return await execute(
      opts,
      {
        run,
        texts: plan,
        expected: plan.ingested,
        records: plan.ingested,
        converted: plan.converted,
        writeTexts: async (writer) => {
          for await (const batch of plan.batches()) await writer.writeTexts(batch, run);
        },
        writeGeneral: general && ((writer) => writeGeneralFile(writer, runId, general)),
        pool: [],
        evaluations,
        rejected: rejects.count,
        rejects: rejects.first,
      },
      started,
    );
  } finally {
    for (const c of copies) c.remove();
  }
}

/** General instructions in batches, in file order, all with one ingest time (as one write would give them). */
async function writeGeneralFile(writer: PipelineWriter, runId: string, scan: TextFileScan): Promise<void> {
  const now = Date.now();
  let batch: InputText[] = [];
  for await (const r of scan.records()) {
    if (scan.dead.get(r.slot)) continue;
    batch.push({ id: r.id, text: r.text, source: `${scan.path}:${r.line}` });
    if (batch.length === 2000) {
      await writer.writeGeneral(runId, batch, now);
      batch = [];
    }
  }
  if (batch.length > 0) await writer.writeGeneral(runId, batch, now);
}

/** The raw topic's max.message.bytes (texts above it are rejected by line before the run is planned). */
async function rawTopicLimit(opts: PipelineRunOptions): Promise<number | undefined> {
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  const admin = createKafka({ brokers: opts.pipeline.runtime.brokers, clientId: `${opts.pipeline.runtime.clientId}-run`, logger: opts.logger }).admin();
  await admin.connect();
  const limits = await messageLimits(admin, [topics.raw]).finally(() => admin.disconnect());
  return limits.get(topics.raw);
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

/** A run ready to execute, from records in memory (RunInput) or streamed from a file (TextFilePlan). */
interface PlannedRun {
  run: RunConfig;
  texts: RunTexts;
  /** Texts that must each be accounted for, and the records written (the same, but for a run seeded with collections). */
  expected: number;
  records: number;
  /** Texts sent to synthesis: each has a metric event, unless dead-lettered before its result existed. */
  converted: number;
  writeTexts: (writer: PipelineWriter) => Promise<void>;
  writeGeneral?: (writer: PipelineWriter) => Promise<void>;
  pool: RoundCollectionRecord[];
  evaluations: EvaluationRecord[];
  rejected: number;
  rejects: Reject[];
}

/** A RunInput's texts by slot, in the order of its expected ids. */
class ListedTexts implements RunTexts {
  private readonly ids: string[];
  private readonly slots: Map<string, number>;
  private readonly convert = new Bits();

  constructor(expected: Set<string>, records: readonly RawTextRecord[]) {
    this.ids = [...expected];
    this.slots = new Map(this.ids.map((id, i) => [id, i]));
    for (const r of records) if (r.convert && this.slots.has(r.id)) this.convert.set(this.slots.get(r.id)!);
  }
  get size(): number {
    return this.ids.length;
  }
  slotOf(id: string): number {
    return this.slots.get(id) ?? -1;
  }
  has(): boolean {
    return true;
  }
  isConverted(slot: number): boolean {
    return this.convert.get(slot);
  }
  async namesOf(slots: readonly number[]): Promise<string[]> {
    return slots.map((s) => this.ids[s]!);
  }
}

/** Writes a run's records, runs the chain (or lets running stages take it), waits until it is accounted for, and summarises it. */
export function executeRun(opts: Pick<PipelineRunOptions, 'pipeline' | 'startStages' | 'timeoutMs' | 'log' | 'logger' | 'output'>, input: RunInput, started = Date.now()): Promise<PipelineRunSummary> {
  const { run, records, expected, general } = input;
  return execute(
    opts,
    {
      run,
      texts: new ListedTexts(expected, records),
      expected: expected.size,
      records: records.length,
      converted: records.filter((r) => r.convert).length,
      writeTexts: (writer) => writer.writeTexts(records, run),
      writeGeneral: general && ((writer) => writer.writeGeneral(run.runId, general)),
      pool: input.pool,
      evaluations: input.evaluations,
      rejected: input.rejects.length,
      rejects: input.rejects.slice(0, 20),
    },
    started,
  );
}

async function execute(opts: Pick<PipelineRunOptions, 'pipeline' | 'startStages' | 'timeoutMs' | 'log' | 'logger' | 'output'>, input: PlannedRun, started: number): Promise<PipelineRunSummary> {
  const { run, evaluations } = input;
  const runId = run.runId;
  const { runtime, clickhouse } = opts.pipeline;
  // Nothing is written before the stages are known to be able to work.
  if (opts.startStages) await checkStagesCanWork(opts.pipeline.llm, run, opts.log);
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  await migrate(clickhouse.url, clickhouse.database);
  const kafka = createKafka({ brokers: runtime.brokers, clientId: `${runtime.clientId}-run`, logger: opts.logger });
  const serde = new AvroSerde(runtime.registryUrl);
  const writer = new PipelineWriter(kafka, serde, topics);
  // The mixed stream goes to disk as it arrives and into --output at the end, instead of being held.
  const spool = opts.output ? new MixedSpool(opts.output) : undefined;
  let written = false;
  const monitor = new RunMonitor(kafka, serde, topics, runId, input.texts, spool);
  const tally = monitor.tally!;
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
    if (input.writeGeneral) await input.writeGeneral(writer);
    if (opts.startStages) pipeline = await startPipeline({ ...opts.pipeline, logger: opts.logger });
    await monitor.start();
    await input.writeTexts(writer);
    await writer.writePool(input.pool);
    await writer.writeEvaluations(evaluations);
    opts.log(`pipeline: run ${runId}: ${input.records} texts ingested (${run.convertedTexts} to convert in ${run.rounds} round(s), from round ${run.startRound}), ${input.rejected} rejected`);

    const expected = input.expected;
    const deadline = started + opts.timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    // A stage of this process that stopped for good ends the wait at once: the run cannot finish without it.
    const stagesAlive = () => {
      if (interrupted) {
        throw new JobError(`interrupted by ${interrupted}: run ${runId} stopped with ${tally.accounted}/${expected} texts accounted for; its records stay in Kafka (\`ipt pipeline up\` finishes it, \`ipt audit --run ${runId}\` reconciles it)`);
      }
      const dead = pipeline?.processors.find((p) => p.failure);
      if (dead) throw new JobError(`stage ${dead.name} stopped: ${dead.failure!.message}`);
    };
    // Every check below reads running counts: O(1) per batch the monitor reads, however long the run.
    let last = -1;
    await monitor.until(
      () => {
        stagesAlive();
        const n = tally.accounted;
        if (n !== last) {
          last = n;
          opts.log(`pipeline: ${n}/${expected} texts accounted for`);
        }
        return n === expected;
      },
      left(),
      async () => `every text to be accounted for (${tally.accounted}/${expected}; e.g. not yet: ${(await input.texts.namesOf(tally.unaccounted())).join(', ')})`,
    );
    await monitor.until(() => (stagesAlive(), tally.mixedDomain >= tally.domainTexts), left(), () => `the mixed stream (${tally.mixedDomain}/${tally.domainTexts} domain texts)`);
    const expectedEvaluations = evaluations.reduce((s, e) => s + (e.examples.length > 0 ? 2 : 1), 0) - evaluationDeadLetters(tally, evaluations);
    // Each text sent to synthesis has one metric event, unless it was dead-lettered before its result existed.
    await monitor.until(
      () => (stagesAlive(), tally.settled === input.converted && tally.evaluationEvents >= expectedEvaluations),
      left(),
      () => `metric events (${tally.settled}/${input.converted} synthesis, ${tally.evaluationEvents}/${expectedEvaluations} evaluation)`,
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
    const wantRows = { synthesis: tally.synthesisEvents, evaluation: tally.evaluationEvents };
    while (rows.synthesis < wantRows.synthesis || rows.evaluation < wantRows.evaluation) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ClickHouse: ${JSON.stringify(rows)} of ${JSON.stringify(wantRows)} metric rows stored`);
      stagesAlive();
      await new Promise((r) => setTimeout(r, 250));
      rows = await ask(() => metricRowCounts(ch, runId));
    }
    const aggregates = await ask(() => roundAggregates(ch, runId));
    const f1 = await ask(() => f1ByDataset(ch, runId));
    // The counts and the spool are settled from here: nothing more is read.
    await monitor.stop();
    const summary = summarize(run, input, tally, rows, aggregates, f1, started);
    if (spool) {
      summary.output = { path: spool.path, records: await spool.finish() };
      written = true;
    }
    return summary;
  } finally {
    await Promise.allSettled([monitor.stop(), pipeline?.stop(), writer.stop()]);
    if (spool && !written) await spool.discard().catch(() => undefined);
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

function evaluationDeadLetters(tally: RunTally, evaluations: EvaluationRecord[]): number {
  let n = 0;
  for (const e of evaluations) if (tally.hasDeadLetter(e.id, false)) n += e.examples.length > 0 ? 2 : 1;
  return n;
}

function summarize(
  run: RunConfig,
  input: PlannedRun,
  tally: RunTally,
  metricRows: { synthesis: number; evaluation: number },
  rounds: RoundAggregate[],
  evaluation: F1Row[],
  started: number,
): PipelineRunSummary {
  const m = tally.mix;
  return {
    runId: run.runId,
    preset: run.preset,
    rounds: run.rounds,
    ingested: input.expected,
    rejected: input.rejected,
    rejects: input.rejects.slice(0, 20),
    augmented: tally.augmented,
    raw: tally.raw,
    deadLettered: tally.deadLettered,
    deadLetters: tally.namedDeadLetters.slice(0, 20),
    pairs: tally.pairs,
    outputTexts: tally.outputTexts,
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
      records: m.records,
      augmented: m.augmented,
      raw: m.raw,
      general: m.general,
      domainTokens: m.domainTokens,
      generalTokens: m.generalTokens,
      generalShare: m.domainTokens + m.generalTokens === 0 ? 0 : round3(m.generalTokens / (m.domainTokens + m.generalTokens)),
    },
    metricRows,
    evaluation: evaluation.map((e) => ({ ...e, f1: round3(e.f1), exact_match: round3(e.exact_match) })),
    seconds: (Date.now() - started) / 1000,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
