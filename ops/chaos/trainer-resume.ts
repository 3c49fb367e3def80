import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onInterrupt } from './cleanup.ts';
import { freePorts } from './private-stack.ts';
import { PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

const REPO = PACKAGE_ROOT;

/** A crash right after step 3 with checkpoints every 2 steps: the resume starts at step 3 from the step-2 checkpoint. */
export const TRAINER_DRILL = { steps: 5, checkpointEvery: 2, crashAfterStep: 3 };

/** Each rank needs this many batches for the drill. */
export const batchesNeeded = (worldSize: number) => TRAINER_DRILL.steps * worldSize;

export interface TrainerResume {
  /** The first run exited abruptly (non-zero) after the crash step, leaving the checkpoint before it. */
  crashed: boolean;
  checkpointStep: number;
  /** The step the resumed run took first (the same on every rank when it matched). */
  resumedAtStep: number | null;
  /** Every rank resumed with exactly the batch after the checkpoint, and no batch was skipped or taken twice. */
  matched: boolean;
  /** What did not match, per rank. */
  mismatches: string[];
  /** Both torchrun launches, in seconds. */
  seconds: number;
}

interface StepLine {
  rank: number;
  step: number;
  offset: number;
  globalStep: number;
}

/**
 * torchrun (two gloo ranks on CPU) trains on the token topic, crashes (`--exit-after-step`), and is started again
 * with `--resume`. Each rank's k-th step must take its k-th batch of the run, global step (k − 1)·W + rank, across
 * both launches; and the resumed first step the very batch — offset and global step — that step had before the
 * crash. Offsets are not consecutive with an exactly-once sink (transaction markers take offsets), so the check goes
 * by global step and by the offset the first launch saw.
 */
export async function trainerCrashAndResume(o: {
  python: string;
  brokers: string[];
  registryUrl: string;
  env: NodeJS.ProcessEnv;
  topic: string;
  runId: string;
  worldSize: number;
  dir: string;
  log: (line: string) => void;
  /** Per launch. */
  timeoutMs?: number;
}): Promise<TrainerResume> {
  mkdirSync(o.dir, { recursive: true });
  const stepsLog = join(o.dir, 'steps.jsonl');
  const ckpt = join(o.dir, 'ckpt');
  const t0 = Date.now();
  const launch = async (extra: string[]): Promise<number | null> => {
    const [port] = await freePorts(1);
    const out = openSync(join(o.dir, 'torchrun.log'), 'a');
    const args = ['-m', 'torch.distributed.run', '--nproc_per_node', String(o.worldSize), '--master_port', String(port), '-m', 'instruct_pt_trainer.train',
      '--brokers', o.brokers.join(','), '--registry', o.registryUrl, '--topic', o.topic, '--run-id', o.runId,
      '--steps', String(TRAINER_DRILL.steps), '--checkpoint-dir', ckpt, '--checkpoint-every', String(TRAINER_DRILL.checkpointEvery),
      '--hidden-size', '32', '--layers', '1', '--heads', '2', '--log-file', stepsLog, '--idle-timeout-s', '30', ...extra];
    // A process group of its own, so that a launch that hangs is ended with its ranks (by the group of this pid).
    const p = spawn(o.python, args, { cwd: REPO, env: { ...o.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    const killGroup = async () => {
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) process.kill(-p.pid, 'SIGKILL');
    };
    const forget = onInterrupt(killGroup);
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    const timedOut = await Promise.race([exited.then(() => false), sleep(o.timeoutMs ?? 300_000).then(() => true)]);
    if (timedOut) {
      await killGroup();
      forget();
      throw new Error(`torchrun ${extra.join(' ')} did not end within ${(o.timeoutMs ?? 300_000) / 1000} s (log: ${join(o.dir, 'torchrun.log')})`);
    }
    forget();
    return exited;
  };
  const read = (): StepLine[] => (existsSync(stepsLog) ? readFileSync(stepsLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepLine) : []);

  const code = await launch(['--exit-after-step', String(TRAINER_DRILL.crashAfterStep)]);
  const checkpointStep = Math.floor(TRAINER_DRILL.crashAfterStep / TRAINER_DRILL.checkpointEvery) * TRAINER_DRILL.checkpointEvery;
  const crashed = code !== 0 && existsSync(join(ckpt, `step-${checkpointStep}`, 'meta.json'));
  const first = read();
  o.log(`trainer: crashed after step ${TRAINER_DRILL.crashAfterStep} (exit ${code}), ${first.length} step lines; resuming`);
  const resumedCode = await launch(['--resume']);
  const second = read().slice(first.length);
  const mismatches: string[] = [];
  if (!crashed) mismatches.push(`the first launch did not crash as asked (exit ${code}, checkpoint step-${checkpointStep}/ ${existsSync(join(ckpt, `step-${checkpointStep}`, 'meta.json')) ? 'there' : 'missing'})`);
  if (resumedCode !== 0) mismatches.push(`the resumed launch exited ${resumedCode}`);
  const wantAfter = Array.from({ length: TRAINER_DRILL.steps - checkpointStep }, (_, i) => checkpointStep + 1 + i);
  const resumedAt = new Set<number>();
  for (let rank = 0; rank < o.worldSize; rank++) {
    const before = first.filter((e) => e.rank === rank);
    const after = second.filter((e) => e.rank === rank);
    const say = (what: string) => mismatches.push(`rank ${rank}: ${what}`);
    if (after[0]) resumedAt.add(after[0].step);
    if (before.map((e) => e.step).join() !== Array.from({ length: TRAINER_DRILL.crashAfterStep }, (_, i) => i + 1).join()) say(`steps before the crash ${before.map((e) => e.step).join(',')}`);
    if (after.map((e) => e.step).join() !== wantAfter.join()) say(`resumed steps ${after.map((e) => e.step).join(',')}, expected ${wantAfter.join(',')}`);
    // The same batch as the first launch's step after the checkpoint: same offset, same global step.
    const redo = before.find((e) => e.step === checkpointStep + 1);
    if (!redo || !after[0] || after[0].offset !== redo.offset || after[0].globalStep !== redo.globalStep) {
      say(`resumed with offset ${after[0]?.offset} (global step ${after[0]?.globalStep}), expected the batch after the checkpoint: offset ${redo?.offset} (global step ${redo?.globalStep})`);
    }
    for (const e of [...before, ...after]) if (e.globalStep !== (e.step - 1) * o.worldSize + rank) say(`step ${e.step} took global step ${e.globalStep}, expected ${(e.step - 1) * o.worldSize + rank}`);
  }
  return {
    crashed,
    checkpointStep,
    resumedAtStep: resumedAt.size === 1 ? [...resumedAt][0]! : null,
    matched: mismatches.length === 0,
    mismatches,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
}
