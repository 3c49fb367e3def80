import type { Topology } from '../../processors/pipeline/pipeline-topics.ts';
import type { TrainerTools } from './trainer-kill.ts';

export const SCENARIOS = ['stage-kill', 'broker-kill', 'llm-outage', 'llm-endpoint-lost', 'clickhouse-outage', 'registry-outage', 'stage-host-cut', 'trainer-kill'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenarios that run on a private 3-node cluster in network namespaces (skipped, with the reason, where there are none). */
export const CLUSTER_SCENARIOS: readonly Scenario[] = ['stage-host-cut'];

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
