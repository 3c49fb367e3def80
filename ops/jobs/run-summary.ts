import type { F1Row, RoundAggregate } from '../../connectors/clickhouse/run-queries.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { DeadLetter, RunTally } from './run-tally.ts';
import type { PlannedRun } from './planned-run.ts';

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
  perRound: { round: number; texts: number; fewShot: number; pairs: number; failed: number; skipped: number; parseSuccess: number; duplicateRate: number; grounding: number; truncated: number }[];
  mixed: { records: number; augmented: number; raw: number; general: number; domainTokens: number; generalTokens: number; generalShare: number };
  metricRows: { synthesis: number; evaluation: number; judgement: number };
  evaluation: F1Row[];
  /** The judge stage's verdicts on this run (present when it gave any): read, and of those relevant and accurate. */
  judge?: { verdicts: number; judged: number; relevant: number; accurate: number };
  output?: { path: string; records: number };
  seconds: number;
}

export function summarize(
  run: RunConfig,
  input: PlannedRun,
  tally: RunTally,
  metricRows: { synthesis: number; evaluation: number; judgement: number },
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
      truncated: r.truncated_texts,
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
    ...(tally.judgementEvents > 0 ? { judge: { verdicts: tally.judgementEvents, ...tally.judge } } : {}),
    seconds: (Date.now() - started) / 1000,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
