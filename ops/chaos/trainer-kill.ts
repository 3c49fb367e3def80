import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { SMALL_TOKENIZER, smallTokenizerPath } from '../stack/models.ts';
import { trainerPython } from '../stack/python-env.ts';
import { stackConfig, type StackEndpoints } from '../stack/stack-config.ts';
import { trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { awaitBatches, checkBatches, expectedPacking, readBatches, TopicEnds, type BatchCheck } from './trainer-batches.ts';
import { batchesNeeded, trainerCrashAndResume, type TrainerResume } from './trainer-resume.ts';
import { trainerSinkProcess, type SinkShape } from './trainer-sink-process.ts';
import type { StageProcess } from './stage-process.ts';
import { PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

const REPO = PACKAGE_ROOT;

/** 64-token sequences, 4 to a batch, 2 ranks: a few hundred texts already make dozens of batches. */
export const SINK_SHAPE: SinkShape = { seqLen: 64, batchSize: 4, worldSize: 2 };

/** The trainer's Python (its virtual environment) and the sink's tokenizer.json. */
export interface TrainerTools {
  python: string;
  tokenizer: string;
}

/** The stack's trainer environment and small tokenizer (`ipt models install --trainer`), or the ones given; never silently absent. */
export function trainerTools(given?: Partial<TrainerTools>): TrainerTools {
  const cfg = stackConfig(process.env, REPO);
  const tools = { python: given?.python ?? trainerPython(cfg), tokenizer: given?.tokenizer ?? smallTokenizerPath(cfg) };
  const missing = Object.entries(tools).filter(([, p]) => !existsSync(p));
  if (missing.length) throw new Error(`trainer-kill needs the trainer's Python environment and the sink's tokenizer; missing: ${missing.map(([k, p]) => `${k} ${p}`).join(', ')} (\`ipt models install --trainer\` installs both)`);
  return tools;
}

export interface SinkKill {
  /** Wall-clock time of the SIGKILL (ms since the epoch), to tell the batches and mixed records before it from those after. */
  at: number;
  startMs: number;
  endMs: number;
  /** From the restart until the sink committed input again (its transaction with new batches). */
  recoverMs: number;
}

/** The trainer sink as a process beside the run, with the end offsets of its input and output sampled for the faults. */
export class SinkUnderFire {
  readonly kills: SinkKill[] = [];
  /** The token topic's end offsets (markers included): it grew, so the sink wrote. */
  tokensEnd = 0;
  /**
   * The sink group's committed input offset. It moves only when a transaction commits, whereas the end offsets also
   * grow by the abort markers a restarted sink's fencing leaves.
   */
  committed = -1;
  private timer: NodeJS.Timeout | undefined;
  readonly topics: ReturnType<typeof trainerSinkTopics>;

  private constructor(
    readonly proc: StageProcess,
    private readonly ends: TopicEnds,
    private readonly prefix: string,
  ) {
    this.topics = trainerSinkTopics(prefix);
  }

  static async start(o: { name: string; prefix: string; tools: TrainerTools; env: NodeJS.ProcessEnv; logsDir: string; metricsPort: number; kafka: Kafka }): Promise<SinkUnderFire> {
    const p = trainerSinkProcess(o.name, { prefix: o.prefix, tokenizer: o.tools.tokenizer, eosToken: SMALL_TOKENIZER.eosToken, shape: SINK_SHAPE }, o.env, o.logsDir, o.metricsPort);
    const s = new SinkUnderFire(p, await TopicEnds.connect(o.kafka), o.prefix);
    p.start();
    let busy = false;
    s.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void Promise.all([s.ends.end(s.topics.output), s.ends.committed(`${s.prefix}.trainer-sink`, s.topics.input)])
        .then(([end, committed]) => {
          s.tokensEnd = end;
          s.committed = committed;
        })
        .finally(() => (busy = false));
    }, 250);
    return s;
  }

  /**
   * SIGKILL, then a restart at once (a supervisor's); resolves when the restarted sink has joined its group and
   * committed new input, or after waitMs.
   */
  async killAndRestart(now: () => number, waitMs = 120_000): Promise<SinkKill> {
    const startMs = now();
    const at = Date.now();
    const committedAtKill = this.committed;
    await this.proc.kill();
    this.proc.start();
    const endMs = now();
    const deadline = Date.now() + waitMs;
    await this.proc.ready(waitMs);
    while (this.committed <= committedAtKill && Date.now() < deadline) await sleep(100);
    const k = { at, startMs, endMs, recoverMs: now() - endMs };
    this.kills.push(k);
    return k;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.proc.kill();
    await this.ends.close().catch(() => undefined);
  }
}

/** The batch check's counts (gaps, doubles, misplaced, content, tokens per source), then the kills' and the trainer's. */
export interface TrainerFigures extends Omit<BatchCheck, 'ok'> {
  sinkKillsPlanned: number;
  sinkKills: number;
  /** Kills with batches committed before them and mixed records of the run written after them. */
  sinkKillsMidStream: number;
  /** Per kill: batches committed before it, mixed records written after it, seconds until the sink wrote again. */
  killDetail: { atS: number; batchesBefore: number; mixedAfter: number; recoverS: number }[];
  /** Mixed records of the run, copies included: the stream the batches must hold, each record once. */
  mixedRead: number;
  /** Distinct mixed records (fewer than mixedRead only where a stage wrote copies: at-least-once). */
  mixedRecords: number;
  /** Mixed records below a mix index before them in the topic (ExpectedPacking.mixOrderBreaks). */
  mixOrderBreaks: number;
  /** From the stage processes' stop until the sink had written every batch. */
  catchUpSeconds: number;
  sinkStopSeconds: number;
  /** The torchrun drill: crash, resume, the step it resumed at and whether that was the batch after the checkpoint. */
  trainerCrashed: boolean;
  checkpointStep: number | null;
  resumedAtStep: number | null;
  resumeMatched: boolean;
  trainerSeconds: number;
  /** Batches exact, every planned kill done mid-stream, and an exact resume (a sink that exited by itself is a problem, not a failure). */
  ok: boolean;
  problems: string[];
}

/**
 * After the run: the sink catches up, stops (SIGTERM), and its committed batches are checked against the packing of
 * the run's mixed stream; then the trainer crashes and resumes on them.
 */
export async function finishTrainerKill(o: {
  sink: SinkUnderFire;
  planned: number;
  kafka: Kafka;
  serde: AvroSerde;
  runId: string;
  tools: TrainerTools;
  endpoints: StackEndpoints;
  env: NodeJS.ProcessEnv;
  dir: string;
  log: (line: string) => void;
}): Promise<TrainerFigures> {
  const { sink, kafka, serde, runId } = o;
  const t0 = Date.now();
  const want = await expectedPacking(kafka, serde, sink.topics.input, runId, o.tools.tokenizer, SMALL_TOKENIZER.eosToken, SINK_SHAPE);
  await awaitBatches(kafka, serde, sink.topics.output, runId, want.batches);
  const catchUpSeconds = (Date.now() - t0) / 1000;
  const stopped = await sink.proc.stop();
  // Read again once stopped: whatever it committed while stopping counts too, and a doubled batch would show.
  const batches = await readBatches(kafka, serde, sink.topics.output, runId);
  const check: BatchCheck = checkBatches(batches, want, SINK_SHAPE);
  o.log(`sink: ${check.batches}/${check.batchesExpected} batches, ${check.stepGaps} gaps, ${check.stepDuplicates} doubled, caught up ${catchUpSeconds.toFixed(1)} s after the run`);
  const killDetail = sink.kills.map((k) => ({
    atS: round1(k.startMs / 1000),
    batchesBefore: batches.filter((b) => Number(b.createdAt) < k.at).length,
    mixedAfter: want.mixedTimes.filter((t) => t > k.at).length,
    recoverS: round1(k.recoverMs / 1000),
  }));
  const midStream = killDetail.filter((k) => k.batchesBefore > 0 && k.mixedAfter > 0).length;

  const problems: string[] = [];
  let drill: TrainerResume | undefined;
  if (check.batches < batchesNeeded(SINK_SHAPE.worldSize)) problems.push(`${check.batches} batches: too few for the trainer drill (${batchesNeeded(SINK_SHAPE.worldSize)} needed; give more texts)`);
  else {
    drill = await trainerCrashAndResume({ python: o.tools.python, brokers: o.endpoints.brokers, registryUrl: o.endpoints.registryUrl, env: o.env, topic: sink.topics.output, runId, worldSize: SINK_SHAPE.worldSize, dir: o.dir, log: o.log });
    o.log(`trainer: resumed at step ${drill.resumedAtStep} from the step-${drill.checkpointStep} checkpoint: ${drill.matched ? 'exactly the next batch' : `MISMATCH ${drill.mismatches.join('; ')}`} (${drill.seconds} s)`);
    problems.push(...drill.mismatches.map((m) => `trainer: ${m}`));
  }
  if (sink.kills.length < o.planned) problems.push(`${sink.kills.length} of ${o.planned} sink kills happened before the run ended`);
  if (midStream < sink.kills.length) problems.push(`${sink.kills.length - midStream} sink kill(s) not mid-stream (no batch before, or no mixed record after)`);
  if (!check.ok) problems.push(`token batches: ${check.batches}/${check.batchesExpected}, ${check.stepGaps} gaps, ${check.stepDuplicates} doubled, ${check.misplaced} misplaced, ${check.contentMismatches} with other tokens; tokens ${JSON.stringify(check.tokens)} against ${JSON.stringify(check.tokensExpected)}`);
  for (const e of sink.proc.unplannedExits) problems.push(`the sink exited by itself (code ${e.code}${e.signal ? `, ${e.signal}` : ''}) and was restarted: ${e.lastLines.slice(-400)}`);
  return {
    sinkKillsPlanned: o.planned,
    sinkKills: sink.kills.length,
    sinkKillsMidStream: midStream,
    killDetail,
    mixedRead: want.mixedRead,
    mixedRecords: want.mixedRecords,
    mixOrderBreaks: want.mixOrderBreaks,
    batches: check.batches,
    batchesExpected: check.batchesExpected,
    stepGaps: check.stepGaps,
    stepDuplicates: check.stepDuplicates,
    misplaced: check.misplaced,
    contentMismatches: check.contentMismatches,
    tokens: check.tokens,
    tokensExpected: check.tokensExpected,
    streamTokens: check.streamTokens,
    catchUpSeconds: round1(catchUpSeconds),
    sinkStopSeconds: round1(stopped.seconds),
    trainerCrashed: drill?.crashed ?? false,
    checkpointStep: drill?.checkpointStep ?? null,
    resumedAtStep: drill?.resumedAtStep ?? null,
    resumeMatched: drill?.matched ?? false,
    trainerSeconds: drill?.seconds ?? 0,
    ok: check.ok && sink.kills.length >= o.planned && o.planned > 0 && midStream === sink.kills.length && drill?.matched === true,
    problems,
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Where the drill keeps its checkpoints and logs. */
export const trainerDir = (logsDir: string, tag: string) => join(logsDir, `${tag}-trainer`);
