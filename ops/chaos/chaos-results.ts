import type { Topology } from '../../processors/pipeline/pipeline-topics.ts';
import type { TrainerFigures } from './trainer-kill.ts';
import type { ChaosCase, Scenario } from './chaos-cases.ts';

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

export type StackFigures = { startupSeconds: number; services: Record<string, number>; downSeconds: number };

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

export const round1 = (x: number) => Math.round(x * 10) / 10;

/** A result for a case that could not run here: it says why, and is not ok. */
export function skippedResult(c: ChaosCase, reason: string): ScenarioResult {
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
