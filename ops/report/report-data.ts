import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import {
  f1ByDataset,
  histograms,
  mixShareOverTime,
  roundAggregates,
  type F1Row,
  type HistogramBin,
  type MixSharePoint,
  type RoundAggregate,
} from '../../connectors/clickhouse/run-queries.ts';
import { judgeCategories, judgeVerdicts, type JudgeRoundRow } from '../../connectors/clickhouse/judge-queries.ts';
import type { PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixerStateRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { readRun } from '../jobs/read-run.ts';
import { JobError } from '../../processors/runtime/job-error.ts';

/** The run's settings the report quotes (from the runs topic). */
export type ReportRunSettings = Pick<RunConfig, 'preset' | 'rounds' | 'ingested' | 'convertedTexts' | 'convertFraction' | 'generalWeight' | 'model' | 'maxNewTokens' | 'seed' | 'createdAt'>;

export interface ReportJudge {
  model: string;
  rounds: JudgeRoundRow[];
  categories: { category: string; pairs: number }[];
}

/** Everything a run's report shows, read once: ClickHouse's metrics and, where Kafka is reachable, the run's settings and final mix. */
export interface ReportData {
  runId: string;
  generatedAt: string;
  /** Absent when the runs topic was not read or no longer holds the run. */
  run?: ReportRunSettings;
  rounds: RoundAggregate[];
  histograms: HistogramBin[];
  f1: F1Row[];
  judges: ReportJudge[];
  mix: {
    /** The mixer's latest counts for the run (its changelog), when read. */
    final?: { domainTokens: number; generalTokens: number; mixIndex: number };
    /** The counts over time, where `ipt serve` followed the changelog into mix_progress. */
    over: MixSharePoint[];
  };
}

export interface ReportSources {
  ch: ClickHouseClient;
  runId: string;
  /** The run's settings and final mix come from Kafka; without it they are left out. */
  kafka?: { kafka: Kafka; serde: AvroSerde; topics: PipelineTopics };
  now?: () => Date;
  /** Told what could not be read (the page leaves it out). */
  warn?: (line: string) => void;
}

/** Reads what a run's report shows; fails naming the run when nothing at all was recorded for it. */
export async function loadReportData(s: ReportSources): Promise<ReportData> {
  const [rounds, hist, f1, verdicts, categories, over] = await Promise.all([
    roundAggregates(s.ch, s.runId),
    histograms(s.ch, s.runId),
    f1ByDataset(s.ch, s.runId),
    judgeVerdicts(s.ch, s.runId),
    judgeCategories(s.ch, s.runId),
    mixShareOverTime(s.ch, s.runId),
  ]);
  let run: ReportRunSettings | undefined;
  let final: ReportData['mix']['final'];
  if (s.kafka) {
    const { kafka, serde, topics } = s.kafka;
    // Without the topics (another prefix, topics deleted, no broker), the page goes on without the settings and says so.
    const [runs, mixer] = await Promise.all([
      readRun<RunConfig>(kafka, serde, topics.runs, 'run-config', s.runId, (r) => r.runId),
      readRun<MixerStateRecord>(kafka, serde, topics.mixerState, 'mixer-state', s.runId, (m) => m.runId),
    ]).catch((err: unknown) => {
      s.warn?.(`the run's settings and final mix were not read from ${topics.runs} and ${topics.mixerState}: ${(err as Error).message}`);
      return [new Map<string, RunConfig>(), new Map<string, MixerStateRecord>()] as const;
    });
    const r = runs.get(s.runId);
    if (r) run = { preset: r.preset, rounds: r.rounds, ingested: r.ingested, convertedTexts: r.convertedTexts, convertFraction: r.convertFraction, generalWeight: r.generalWeight, model: r.model, maxNewTokens: r.maxNewTokens, seed: r.seed, createdAt: r.createdAt };
    const m = mixer.get(s.runId);
    if (m) final = { domainTokens: m.emittedTokens[0] ?? 0, generalTokens: m.emittedTokens[1] ?? 0, mixIndex: m.mixIndex };
  }
  if (!run && rounds.length === 0 && f1.length === 0 && verdicts.length === 0) throw new JobError(`run "${s.runId}": nothing recorded (no settings in the runs topic, no metrics in ClickHouse)`);
  const models = [...new Set(verdicts.map((v) => v.judge_model))];
  return {
    runId: s.runId,
    generatedAt: (s.now?.() ?? new Date()).toISOString(),
    ...(run ? { run } : {}),
    rounds,
    histograms: hist,
    f1,
    judges: models.map((model) => ({ model, rounds: verdicts.filter((v) => v.judge_model === model), categories: categories.filter((c) => c.judge_model === model).map((c) => ({ category: c.category, pairs: c.pairs })) })),
    mix: { ...(final ? { final } : {}), over },
  };
}
