import { MixedSpool } from '../../connectors/files/mixed-spool.ts';
import { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { f1ByDataset, metricRowCounts, roundAggregates } from '../../connectors/clickhouse/run-queries.ts';
import { ProgressLine } from './progress-line.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { ensurePipelineTopics, startPipeline, type RunningPipeline } from '../pipeline/start-pipeline.ts';
import type { EvaluationRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import { RunMonitor } from './run-monitor.ts';
import type { RunTally } from './run-tally.ts';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { checkLlmEndpoints } from '../../connectors/llm/preflight.ts';
import { JobError } from '../../processors/runtime/job-error.ts';
import type { PipelineRunOptions } from './pipeline-run-options.ts';
import { ListedTexts, type PlannedRun, type RunInput } from './planned-run.ts';
import { summarize, type PipelineRunSummary } from './run-summary.ts';

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

export async function execute(opts: Pick<PipelineRunOptions, 'pipeline' | 'startStages' | 'timeoutMs' | 'log' | 'logger' | 'output'>, input: PlannedRun, started: number): Promise<PipelineRunSummary> {
  const { run, evaluations } = input;
  const runId = run.runId;
  const { runtime, clickhouse } = opts.pipeline;
  // Nothing is written before the stages are known to be able to work.
  // The judge stage runs here where this process starts the stages and its list (all by default) holds the judge. One
  // elsewhere (stages run apart, a list without it) may have another cap, or none: its endpoints are not checked and
  // its verdicts not waited for.
  const judge = opts.startStages && opts.pipeline.judge !== undefined && (opts.pipeline.stages === undefined || opts.pipeline.stages.includes('judge')) ? opts.pipeline.judge : undefined;
  if (opts.startStages) await checkStagesCanWork(opts.pipeline.llm, run, opts.log, judge);
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
      if (pipeline?.failure) throw new JobError(`the pipeline's stages stopped: ${pipeline.failure.message}`);
      const dead = pipeline?.processors.find((p) => p.failure);
      if (dead) throw new JobError(`stage ${dead.name} stopped: ${dead.failure!.message}`);
    };
    // Every check below reads running counts: O(1) per batch the monitor reads, however long the run.
    let last = -1;
    const progress = new ProgressLine(expected, 'texts');
    await monitor.until(
      () => {
        stagesAlive();
        const n = tally.accounted;
        if (n !== last) {
          last = n;
          const line = progress.update(n);
          if (line !== undefined) opts.log(`pipeline: ${line} accounted for`);
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
    // With the judge stage in this process, the run is done when it has given every verdict it will give (its cap per
    // round).
    const expectedJudgements = () => (judge ? tally.expectedJudgements(judge.perRound) : 0);
    if (judge) await monitor.until(() => (stagesAlive(), tally.judgementsComplete(judge.perRound)), left(), () => `the judge's verdicts (${tally.judgementEvents}/${expectedJudgements()})`);
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
    const wantRows = { synthesis: tally.synthesisEvents, evaluation: tally.evaluationEvents, judgement: tally.judgementEvents };
    while (rows.synthesis < wantRows.synthesis || rows.evaluation < wantRows.evaluation || rows.judgement < wantRows.judgement) {
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
async function checkStagesCanWork(llm: PipelineRunOptions['pipeline']['llm'], run: RunConfig, log: (line: string) => void, judge?: PipelineRunOptions['pipeline']['judge']): Promise<void> {
  if (judge) {
    const judges = new SynthesisPool({ endpoints: judge.endpoints, model: judge.model, timeoutMs: llm.timeoutMs });
    for (const w of await checkLlmEndpoints(judges, { needTokenize: false, setting: '--judge-url (IPT_JUDGE_URL)' })) log(`pipeline: ${w}`);
  }
  if (llm.client || llm.endpoints.length === 0) return;
  const pool = new SynthesisPool({ endpoints: llm.endpoints, model: run.model, timeoutMs: llm.timeoutMs });
  for (const w of await checkLlmEndpoints(pool, { needTokenize: run.lengthEstimate === 'tokens' && !llm.tokenizer, setting: '--llm-url (IPT_LLM_URL)' })) log(`pipeline: ${w}`);
}

function evaluationDeadLetters(tally: RunTally, evaluations: EvaluationRecord[]): number {
  let n = 0;
  for (const e of evaluations) if (tally.hasDeadLetter(e.id, false)) n += e.examples.length > 0 ? 2 : 1;
  return n;
}
