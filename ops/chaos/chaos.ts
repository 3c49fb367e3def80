import { logLevel } from '../../processors/runtime/logger.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { startPrivateStack } from './private-stack.ts';
import { interrupted } from './cleanup.ts';
import { netnsProblem } from '../stack/netns.ts';
import { CLUSTER_SCENARIOS, type ChaosCase, type ChaosOptions } from './chaos-cases.ts';
import { round1, skippedResult, type ChaosReport, type ScenarioResult, type StackFigures } from './chaos-results.ts';
import { runCase } from './run-case.ts';

export { CI_CASES, CLUSTER_SCENARIOS, SCENARIOS, type ChaosCase, type ChaosOptions, type Scenario } from './chaos-cases.ts';
export type { ChaosReport, ScenarioResult } from './chaos-results.ts';

const CLUSTER_BROKERS = 3;
const needsCluster = (c: ChaosCase) => CLUSTER_SCENARIOS.includes(c.scenario);

/**
 * Runs the cases on private stacks of their own, taken down again also when a case or the suite fails: the
 * single-broker stack for most scenarios, a 3-node cluster in network namespaces for the cluster scenarios (each
 * stack only when a case needs it). Results come in the cases' order.
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const results = new Map<number, ScenarioResult>();
  const figures: { cluster: boolean; f: StackFigures }[] = [];
  const indexed = o.cases.map((c, i) => ({ c, i }));
  const groups = [indexed.filter((x) => !needsCluster(x.c)), indexed.filter((x) => needsCluster(x.c))];
  for (const [g, cases] of groups.entries()) {
    if (cases.length === 0 || interrupted()) continue;
    const cluster = g === 1;
    const problem = cluster ? netnsProblem() : undefined;
    if (problem) {
      o.log(`skipping ${[...new Set(cases.map((x) => x.c.scenario))].join(', ')}: it needs network namespaces for a cluster and a stage host, and here ${problem}`);
      for (const x of cases) results.set(x.i, skippedResult(x.c, `no network namespaces here: ${problem}`));
      continue;
    }
    figures.push({ cluster, f: await runOnStack(o, cases, cluster, results) });
  }
  const ordered = [...results.entries()].sort(([a], [b]) => a - b).map(([, r]) => r);
  const ran = ordered.filter((r) => !r.skipped);
  const zero: StackFigures = { startupSeconds: 0, services: {}, downSeconds: 0 };
  return {
    stack: figures[0]?.f ?? zero,
    ...(figures.some((f) => f.cluster) ? { clusterStack: figures.find((f) => f.cluster)!.f } : {}),
    settings: { rounds: o.rounds, partitions: o.partitions, sessionTimeoutMs: o.sessionTimeoutMs, runTimeoutMs: o.runTimeoutMs, seed: o.seed, ...(o.llmTimeoutMs ? { llmTimeoutMs: o.llmTimeoutMs } : {}) },
    scenarios: ordered,
    seconds: round1((Date.now() - started) / 1000),
    // A skipped scenario proves nothing: with nothing run the report is not ok; beside others it is listed as skipped.
    ok: ran.length > 0 && ran.every((r) => r.ok),
  };
}

async function runOnStack(o: ChaosOptions, cases: { c: ChaosCase; i: number }[], cluster: boolean, results: Map<number, ScenarioResult>): Promise<StackFigures> {
  const stack = await startPrivateStack({ log: o.log, brokers: cluster ? CLUSTER_BROKERS : 1 });
  o.log(`private stack${cluster ? ` (${CLUSTER_BROKERS}-node cluster in network namespaces)` : ''} up in ${stack.startup.seconds} s at ${stack.dir}`);
  const logsDir = o.logsDir ?? join(stack.dir, 'chaos-logs');
  mkdirSync(logsDir, { recursive: true });
  // The suite's own clients log to a file: a killed broker makes kafkajs write hundreds of lines.
  const dest = pino.destination({ dest: join(logsDir, 'chaos.log'), sync: false, mkdir: true });
  const logger = pino({ name: 'ipt-chaos', level: logLevel('warn') }, dest);
  let downSeconds = 0;
  try {
    for (const { c, i } of cases) {
      if (interrupted()) break;
      o.log(`scenario ${i + 1}/${o.cases.length}: ${c.scenario}, ${c.topology}, exactly-once ${c.exactlyOnce ? 'on' : 'off'}, ${c.texts} texts`);
      const r = await runCase(c, o, stack, logsDir, logger, i);
      o.log(`  → ${r.ok ? 'ok' : 'FAILED'}: ${r.accounted}/${r.ingested} accounted, ${r.lost} lost, ${r.duplicated} duplicated, ${r.metricRows}/${r.metricRowsExpected} rows, recover ${r.recoverSeconds} s, ${r.seconds} s`);
      results.set(i, r);
    }
  } finally {
    await new Promise<void>((r) => dest.flush(() => r()));
    const t0 = Date.now();
    await stack.dispose();
    downSeconds = (Date.now() - t0) / 1000;
  }
  return { startupSeconds: stack.startup.seconds, services: stack.startup.services, downSeconds };
}
