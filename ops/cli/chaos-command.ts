import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import type { Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('chaos');

/** The full matrix's sizes: a long stage-kill run, shorter runs for the outages (they stall the run anyway). */
const FULL = { stageKillTexts: 100_000, texts: 20_000, kills: 20, outageSeconds: 60, hostCutSeconds: 30, trainerKills: 3, sinkKills: 1 };

export async function chaosCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('chaos', argv, FLAGS.chaos);
  const { CI_CASES, SCENARIOS, runChaos } = await import('../chaos/chaos.ts');
  type Scenario = (typeof SCENARIOS)[number];
  type Case = Parameters<typeof runChaos>[0]['cases'][number];
  const scenarios: Scenario[] | undefined = values.scenarios;
  const topologies: Topology[] | undefined = values.topologies;
  const eo = values['exactly-once'];
  const exactlyOnce = eo === undefined ? undefined : eo === 'both' ? [true, false] : [eo === 'on'];
  const { texts, kills } = values;
  const sinkKills = values['sink-kills'];
  const outageSeconds = values['outage-s'];

  let cases: Case[];
  if (values.ci) {
    cases = CI_CASES.filter((c) => !scenarios || scenarios.includes(c.scenario))
      .filter((c) => !topologies || topologies.includes(c.topology))
      .filter((c) => !exactlyOnce || exactlyOnce.includes(c.exactlyOnce))
      .map((c) => ({ ...c, texts: texts ?? c.texts, kills: kills ?? c.kills, outageSeconds: outageSeconds ?? c.outageSeconds }));
  } else {
    cases = [];
    for (const scenario of scenarios ?? SCENARIOS)
      for (const topology of topologies ?? (['staged', 'fused'] as Topology[]))
        for (const eo of exactlyOnce ?? [true, false])
          cases.push({
            scenario: scenario as Scenario,
            topology,
            exactlyOnce: eo,
            texts: texts ?? (scenario === 'stage-kill' ? FULL.stageKillTexts : FULL.texts),
            // trainer-kill: the sink writes only once the last round's collections reach the mix, and each of its kills
            // costs a session timeout, so one kill fits the last part of a 20,000-text run (more with more texts).
            kills: kills ?? (scenario === 'trainer-kill' ? FULL.trainerKills : FULL.kills),
            ...(scenario === 'trainer-kill' ? { sinkKills: sinkKills ?? FULL.sinkKills } : {}),
            outageSeconds: outageSeconds ?? (scenario === 'stage-host-cut' ? FULL.hostCutSeconds : FULL.outageSeconds),
          });
  }
  if (cases.length === 0) throw new UsageError(`chaos: the flags leave no scenario to run\n${USAGE}`);

  const log = (l: string) => process.stderr.write(`chaos: ${l}\n`);
  const report = await runChaos({
    cases,
    rounds: values.rounds,
    partitions: 4,
    sessionTimeoutMs: values['session-timeout-ms'],
    runTimeoutMs: values['run-timeout-ms'] ?? (values.ci ? 300_000 : 1_800_000),
    seed: values.seed ?? Date.now() % 1_000_000,
    logsDir: values.logs,
    llmTimeoutMs: values['llm-timeout-ms'],
    log,
  });

  if (values.save) {
    const recordedAt = new Date().toISOString();
    // A folder gets a dated file, so results of several sessions sit side by side.
    const isDir = values.save.endsWith('/') || (existsSync(values.save) && statSync(values.save).isDirectory());
    const path = isDir ? join(values.save, `chaos-${recordedAt.replace(/[-:]/g, '').replace(/\..*/, '')}.json`) : values.save;
    mkdirSync(dirname(path), { recursive: true });
    const machine = { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
    writeFileSync(path, JSON.stringify({ recordedAt, command: ['ipt', 'chaos', ...argv].join(' '), machine, ...report }, null, 2) + '\n');
    log(`results saved to ${path}`);
  }
  if (values.json) console.log(JSON.stringify(report));
  else {
    const skipped = report.scenarios.filter((r) => r.skipped).length;
    if (skipped === report.scenarios.length) console.log(`chaos: nothing ran; ${skipped} scenario(s) skipped`);
    else console.log(`chaos: private stack up in ${report.stack.startupSeconds} s${report.clusterStack ? ` (cluster: ${report.clusterStack.startupSeconds} s)` : ''}; ${report.scenarios.length} scenario(s) in ${report.seconds} s${skipped ? `, ${skipped} skipped` : ''}`);
    for (const r of report.scenarios) {
      if (r.skipped) {
        console.log(`  SKIPPED ${r.scenario} ${r.topology} exactly-once ${r.exactlyOnce ? 'on ' : 'off'}: ${r.skipped}`);
        continue;
      }
      console.log(
        `  ${r.ok ? 'ok    ' : 'FAILED'} ${r.scenario} ${r.topology} exactly-once ${r.exactlyOnce ? 'on ' : 'off'}: ${r.ingested} ingested, ${r.accounted} accounted, ${r.lost} lost, ` +
          `${r.duplicated} duplicated, ${r.deadLettered} dead-lettered, rows ${r.metricRows}/${r.metricRowsExpected}, ${r.faults.length} fault(s), recover ${r.recoverSeconds ?? '-'} s, ` +
          `${r.seconds} s`,
      );
      const t = r.trainer;
      if (t) {
        console.log(
          `      trainer sink: ${t.sinkKills}/${t.sinkKillsPlanned} kills (${t.sinkKillsMidStream} mid-stream), batches ${t.batches}/${t.batchesExpected}, ${t.stepGaps} gaps, ` +
            `${t.stepDuplicates} doubled; trainer resumed at step ${t.resumedAtStep ?? '-'} from step ${t.checkpointStep ?? '-'}: ${t.resumeMatched ? 'exact' : 'NOT exact'}`,
        );
      }
      for (const p of r.problems) console.log(`      problem: ${p}`);
      if (r.problems.length) for (const n of r.notes) console.log(`      ${n.split('\n').join('\n      ')}`);
    }
  }
  return report.ok ? 0 : 1;
}
