import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateStack } from './private-stack.ts';
import type { StageProcess } from './stage-process.ts';
import type { LlmEndpoints } from './llm-endpoints.ts';
import type { StageHost } from './stage-host.ts';
import type { SinkUnderFire } from './trainer-kill.ts';
import type { ChaosCase, Scenario } from './chaos-cases.ts';
import type { Progress } from './run-progress.ts';

export interface Fault {
  kind: string;
  startMs: number;
  endMs: number;
  /** Measured by the fault itself (a sink kill: until the sink wrote again), rather than from the run's progress. */
  recoverMs?: number;
}

interface FaultContext {
  c: ChaosCase;
  stack: PrivateStack;
  llm: LlmEndpoints;
  victim: StageProcess;
  /** stage-host-cut: the victim's own host. */
  host?: StageHost;
  /** trainer-kill: the trainer sink beside the run. */
  sink?: SinkUnderFire;
  progress: Progress;
  rand: () => number;
  notes: string[];
  log: (line: string) => void;
}

/** Waits until the LLM has answered this share of the run's texts (or the run ended). */
const reached = (x: FaultContext, share: number) => x.progress.until(() => x.progress.served() >= share * x.c.texts);

/** Kills the stage process that calls the LLM x.c.kills times, restarting it at once each time. */
async function killStage(x: FaultContext): Promise<Fault[]> {
  const faults: Fault[] = [];
  // Kills land between 5% and 70% of the prompts, so that even the last one finds work left to interrupt.
  const shares = Array.from({ length: x.c.kills }, () => 0.05 + 0.65 * x.rand()).sort((a, b) => a - b);
  for (const [i, share] of shares.entries()) {
    if (!(await reached(x, share))) break;
    const startMs = x.progress.now();
    await x.victim.kill();
    x.victim.start();
    const endMs = x.progress.now();
    faults.push({ kind: `kill ${i + 1}`, startMs, endMs });
    x.log(`kill ${i + 1}/${x.c.kills} at ${(startMs / 1000).toFixed(1)} s (${x.progress.served()} prompts answered); restarted`);
    // The next kill comes once the run has moved again, so that each kill's recovery is its own.
    if (!(await x.progress.until(() => x.progress.movedAt(endMs) !== undefined))) break;
  }
  if (faults.length < x.c.kills) x.notes.push(`${faults.length} of ${x.c.kills} kills happened before the run ended`);
  return faults;
}

/**
 * Kills the trainer sink x.c.sinkKills times, each once it has written batches and while the run still goes on: in the
 * second half of the prompts, when the last round's collections reach the mix.
 */
async function killSink(x: FaultContext): Promise<Fault[]> {
  const sink = x.sink!;
  const n = x.c.sinkKills ?? 1;
  const faults: Fault[] = [];
  const shares = Array.from({ length: n }, (_, i) => 0.5 + (0.35 * (i + x.rand())) / n);
  for (const [i, share] of shares.entries()) {
    const since = sink.tokensEnd;
    // Batches written since its last start, so that every kill interrupts a sink that was working.
    if (!(await x.progress.until(() => x.progress.served() >= share * x.c.texts && sink.tokensEnd > since))) break;
    const k = await sink.killAndRestart(() => x.progress.now());
    faults.push({ kind: `trainer sink kill ${i + 1}`, startMs: k.startMs, endMs: k.endMs, recoverMs: k.recoverMs });
    x.log(`trainer sink kill ${i + 1}/${n} at ${(k.startMs / 1000).toFixed(1)} s (${x.progress.served()} prompts answered); restarted, writing again ${(k.recoverMs / 1000).toFixed(1)} s later`);
  }
  return faults;
}

/** Each scenario injects its faults while the run goes on and returns them; it stops early when the run ends. */
export const INJECT: Record<Scenario, (x: FaultContext) => Promise<Fault[]>> = {
  'stage-kill': killStage,
  async 'trainer-kill'(x) {
    const [stage, sink] = await Promise.all([killStage(x), killSink(x)]);
    return [...stage, ...sink].sort((a, b) => a.startMs - b.startMs);
  },
  async 'broker-kill'(x) {
    if (!(await reached(x, 0.3))) return [];
    const startMs = x.progress.now();
    await x.stack.kill('kafka');
    x.log(`broker killed at ${(startMs / 1000).toFixed(1)} s; restarting it`);
    const seconds = await x.stack.restart();
    x.notes.push(`broker back (healthy) ${seconds.toFixed(1)} s after its kill`);
    return [{ kind: 'broker killed', startMs, endMs: x.progress.now() }];
  },
  async 'llm-outage'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    for (let i = 0; i < x.llm.urls.length; i++) await x.llm.down(i);
    x.log(`LLM down at ${(startMs / 1000).toFixed(1)} s for ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    for (let i = 0; i < x.llm.urls.length; i++) await x.llm.back(i);
    return [{ kind: `all LLM endpoints down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'llm-endpoint-lost'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    await x.llm.down(1);
    x.log(`LLM endpoint 2 of 2 down for good at ${(startMs / 1000).toFixed(1)} s`);
    // It never comes back: the fault "ends" when it starts, and recovery is the pool going on with the other one.
    return [{ kind: 'one of two LLM endpoints down for good', startMs, endMs: startMs }];
  },
  async 'clickhouse-outage'(x) {
    if (!(await reached(x, 0.1))) return [];
    const startMs = x.progress.now();
    // Killed, not terminated: a SIGTERMed 18.16 server can go on answering a busy connection for many seconds.
    await x.stack.kill('clickhouse');
    x.log(`ClickHouse killed at ${(startMs / 1000).toFixed(1)} s, back in ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    await x.stack.restart();
    return [{ kind: `ClickHouse down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'registry-outage'(x) {
    if (!(await reached(x, 0.2))) return [];
    const startMs = x.progress.now();
    await x.stack.kill('schema-registry');
    x.log(`schema registry killed at ${(startMs / 1000).toFixed(1)} s, back in ${x.c.outageSeconds} s`);
    await sleep(x.c.outageSeconds * 1000);
    await x.stack.restart();
    return [{ kind: `schema registry down ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
  async 'stage-host-cut'(x) {
    if (!x.host) throw new Error('stage-host-cut: the stage process has no host namespace');
    if (!(await reached(x, 0.3))) return [];
    const startMs = x.progress.now();
    x.host.cut(true);
    x.log(`stage host ${x.host.host.address} cut off the network at ${(startMs / 1000).toFixed(1)} s for ${x.c.outageSeconds} s`);
    try {
      await sleep(x.c.outageSeconds * 1000);
    } finally {
      x.host.cut(false);
    }
    return [{ kind: `stage host cut off ${x.c.outageSeconds} s`, startMs, endMs: x.progress.now() }];
  },
};
