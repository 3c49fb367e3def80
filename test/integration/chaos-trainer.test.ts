import { describe, expect, inject, it } from 'vitest';
import { runChaos, type ChaosCase } from '../../ops/chaos/chaos.ts';
import { TRAINER_DRILL } from '../../ops/chaos/trainer-resume.ts';

// `ipt chaos --scenarios trainer-kill`, CI-sized, on a private stack of the suite's own (never the shared one): the
// trainer sink runs as a process of its own beside a bounded run whose LLM-calling stage is killed; the sink is killed
// mid-stream too; then the PyTorch trainer crashes and resumes on the batches. The trainer's Python environment and
// tokenizer come from the global set-up, which installs them or fails the run.

const CASE: ChaosCase = { scenario: 'trainer-kill', topology: 'fused', exactlyOnce: true, texts: 400, kills: 1, sinkKills: 1, outageSeconds: 0 };

describe('chaos: the trainer sink and the trainer under faults', () => {
  it('a killed stage and a killed sink: every batch once, the packing exact; the trainer resumes with exactly the next batch', async () => {
    const report = await runChaos({
      cases: [CASE],
      rounds: 2,
      partitions: 4,
      sessionTimeoutMs: 10_000,
      runTimeoutMs: 300_000,
      seed: 1,
      trainer: { python: inject('trainerPython'), tokenizer: inject('smallTokenizer') },
      log: (l) => process.stderr.write(`chaos: ${l}\n`),
    });
    process.stderr.write(`${JSON.stringify(report, null, 2)}\n`);
    expect(report.scenarios).toHaveLength(1);
    const r = report.scenarios[0]!;
    const what = `${r.problems.join(' | ')} || ${r.notes.join(' | ')}`;
    expect(r.scenario).toBe('trainer-kill');
    expect.soft(r.faults.filter((f) => f.kind.startsWith('kill ')).length, `${what}: stage kills`).toBe(1);
    expect.soft(r.faults.filter((f) => f.kind.startsWith('trainer sink kill')).length, `${what}: sink kills`).toBe(1);
    expect.soft(r.ingested, `${what}: ingested`).toBe(CASE.texts);
    expect.soft(r.accounted, `${what}: accounted`).toBe(CASE.texts);
    expect.soft(r.lost, `${what}: lost`).toBe(0);
    expect.soft(r.duplicated, `${what}: mixed duplicates`).toBe(0);
    const t = r.trainer;
    expect(t, `${what}: trainer figures`).toBeDefined();
    expect.soft(t!.sinkKillsMidStream, `${what}: sink killed mid-stream`).toBe(1);
    expect.soft(t!.batches, `${what}: batches`).toBeGreaterThanOrEqual(2 * TRAINER_DRILL.steps);
    expect.soft(t!.batches, `${what}: batches against the packing`).toBe(t!.batchesExpected);
    expect.soft(t!.stepGaps, `${what}: global steps missing`).toBe(0);
    expect.soft(t!.stepDuplicates, `${what}: global steps doubled`).toBe(0);
    expect.soft(t!.misplaced, `${what}: batches misplaced`).toBe(0);
    expect.soft(t!.contentMismatches, `${what}: batches with other tokens`).toBe(0);
    expect.soft(t!.tokens, `${what}: tokens per source`).toEqual(t!.tokensExpected);
    expect.soft(t!.trainerCrashed, `${what}: trainer crashed as asked`).toBe(true);
    expect.soft(t!.checkpointStep, `${what}: the checkpoint before the crash`).toBeLessThan(TRAINER_DRILL.crashAfterStep);
    expect.soft(t!.resumedAtStep, `${what}: resumed at`).toBe(t!.checkpointStep! + 1);
    expect.soft(t!.resumeMatched, `${what}: resumed with exactly the next batch`).toBe(true);
    expect(r.ok, what).toBe(true);
  }, 600_000);
});
