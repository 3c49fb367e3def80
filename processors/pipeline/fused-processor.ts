import { accessSync, constants } from 'node:fs';
import { defineProcessor, stageOf, type Emit, type HandlerResult, type Stage } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { ConfigError } from '../runtime/config-error.ts';
import { template } from '../templating/templating-processor.ts';
import { rawTextProblem, refusedPlace, refusedResult } from '../templating/text-rule.ts';
import { augmentedEmits, closeUnreached, continueCollection } from '../templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../round-feedback/round-feedback-processor.ts';
import { mixingOutputs, mixingProcessor, type MixOut } from '../mixing/mixing-processor.ts';
import { CollectionHandoff } from './collection-handoff.ts';
import { leaveOutContexts } from './pool-contexts.ts';
import { continuesCollection, hasNextText, placement, roundLength, type RunConfig } from './run-config.ts';
import { stageGroup } from './pipeline-topics.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { AugmentedTextRecord, RawTextRecord, RoundCollectionRecord, SynthesisRequestRecord, SynthesisResultRecord } from './records.ts';

type Out = 'pool' | 'augmented' | 'metrics' | MixOut;

/** A nested stage's result as emits plus an optional dead-letter reason; a skip stays a skip. */
function unwrap<O extends string>(r: HandlerResult<O>): { emits: Emit<O>[]; deadLetter?: string } | { skip: string } {
  if (Array.isArray(r)) return { emits: r };
  return r;
}

/**
 * A bound from the environment, for tuning and for benchmarks that force the spool: the hand-over's collections held
 * in memory (IPT_FUSED_MAX_HELD; the rest go to a spool on disk, in IPT_FUSED_SPOOL_DIR or the system's temporary
 * folder) and what a read-back from the topics holds ahead (IPT_FUSED_READ_BACK_MAX).
 */
function envCount(name: string, min: number, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be a whole number ≥ ${min} (got ${raw})`);
  return n;
}

/** A spool folder that cannot be written fails at start-up, not at the first eviction in the middle of a run. */
function spoolDir(): string | undefined {
  const dir = process.env.IPT_FUSED_SPOOL_DIR;
  if (!dir) return undefined;
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new ConfigError(`IPT_FUSED_SPOOL_DIR=${dir} is not a folder this process can write to (${(err as Error).message})`);
  }
  return dir;
}

/** The step a text is in, so a failure names it. */
interface Progress {
  step: string;
}

/**
 * Templating → synthesis → round feedback → mixing chained in memory, in one processor over the raw-text topic (the
 * fused topology; Kafka Streams fuses a sub-topology's operators the same way). It runs the same stage functions as
 * the staged topology and writes what they write except what passes between them (requests, results, augmented
 * texts): collections to the round pool (the changelog that restores the hand-over between rounds and that
 * `ipt rounds start` reads), the mixed stream with each text's lineage and the mixer's changelog, and one metric event
 * per synthesized text (batched per run and chunk).
 * Text i of round r + 1 takes collection i of round r from the previous text's handler (CollectionHandoff) rather
 * than through the pool topic. A failure in any step dead-letters the raw text, naming the step. A text that breaks
 * the ingest text rule is dead-lettered with the rule's reason and goes no further: as in the staged topology, the
 * collection it would have continued is closed, and a `failed` result stands in for it in round feedback, which hands
 * an empty collection on to the next round's text at its position and writes its metric event. Like the mixer, it
 * runs as one instance per topic prefix (its mix counts are per run); one process drives many LLM endpoints.
 */
export function fusedProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  const synthesis = synthesisProcessor(ctx);
  const feedback = roundFeedbackProcessor(ctx);
  const mixer = mixingProcessor(ctx);
  const handoff = new CollectionHandoff(ctx, envCount('IPT_FUSED_MAX_HELD', 1, 100_000), envCount('IPT_FUSED_READ_BACK_MAX', 0, 20_000), spoolDir());

  /** A mixed augmented text's records, or the augmented text itself when the mix leaves it out. */
  const pushMixed = (out: Emit<Out>[], e: Emit<Out>, r: HandlerResult<MixOut>): void => {
    const mixed = unwrap(r);
    if ('skip' in mixed) out.push(e);
    else for (const m of mixed.emits) out.push(m);
  };

  /**
   * Augmented texts are mixed here, in the order they finish, and stay in memory like the requests and results: the
   * mixed record carries their lineage (round, raw text ids, pairs). One the mix leaves out (an empty text) is written
   * to the augmented topic, so every text is still accounted for. Synchronous while the mixer is.
   */
  const withMixed = (emits: Emit<Out>[], at: Progress, from = 0, out: Emit<Out>[] = []): Emit<Out>[] | Promise<Emit<Out>[]> => {
    for (let i = from; i < emits.length; i++) {
      const e = emits[i]!;
      if (e.to !== 'augmented') {
        out.push(e);
        continue;
      }
      at.step = 'mixing';
      const r = mixer.mix(e.value as AugmentedTextRecord);
      if (r instanceof Promise) {
        return r.then((v) => {
          pushMixed(out, e, v);
          return withMixed(emits, at, i + 1, out);
        });
      }
      pushMixed(out, e, r);
    }
    return out;
  };

  /**
   * A run replayed from round N > 0 starts from round N − 1's collections in the round pool; those no text of round
   * N reaches are closed by the round's last text (in the staged topology, templating-pool closes them).
   */
  const closesSeeded = (run: RunConfig, round: number, position: number) => run.startRound > 0 && round === run.startRound && position === roundLength(run, round) - 1;
  const closeSeeded = async (run: RunConfig, round: number, at: Progress): Promise<Emit<Out>[]> => {
    const out: Emit<Out>[] = [];
    at.step = 'round hand-over';
    for (let j = roundLength(run, round); j < roundLength(run, round - 1); j++) {
      const c = await handoff.take(run, round - 1, j);
      out.push(...augmentedEmits(closeUnreached(run, c)));
    }
    return out;
  };

  const spec = defineProcessor<RawTextRecord, Out>({
    name: stageGroup(t, 'fused'),
    input: { topics: [t.raw], schema: 'raw-text' },
    // What round feedback writes (pool, augmented, metrics) and what the mixer writes.
    outputs: { ...feedback.spec.outputs, ...mixingOutputs(t) },
    // The mixer's counts go back to the last commit when handled records are dropped (the hand-over reads back what
    // it gave out).
    checkpoint: mixer.spec.checkpoint,
    handle: async (rec) => {
      const raw = rec.value;
      // Opened before the first await, so the text that continues this one's collection finds the slot.
      const slot = raw.convert && raw.seq >= 0 ? handoff.open(raw.runId, raw.seq) : undefined;
      const at: Progress = { step: 'templating' };
      // Each step's value is awaited only when it is a promise: with a known run and a filled hand-over slot, the LLM
      // call is the chain's only wait.
      try {
        const pending = ctx.run(raw.runId);
        const run = pending instanceof Promise ? await pending : pending;
        const emits: Emit<Out>[] = [];
        let result: SynthesisResultRecord;
        let deadLetter: string | undefined;
        const refused = rawTextProblem(raw);
        if (refused !== undefined) {
          // The staged topology's templating and templating-pool do the same (refuse; the pool's closing).
          const p = refusedPlace(run, raw);
          if (!p) return { emits: [], deadLetter: refused };
          if (continuesCollection(run, p)) {
            at.step = 'round hand-over';
            const taken = handoff.take(run, p.round - 1, p.position);
            const c = taken instanceof Promise ? await taken : taken;
            // The collection this text would have continued ends here.
            emits.push(...augmentedEmits(closeUnreached(run, c)));
          }
          result = refusedResult(raw, p, refused);
          deadLetter = refused;
        } else {
          const first = unwrap(template(raw, run));
          let request: SynthesisRequestRecord;
          if ('skip' in first) {
            const p = placement(run, raw.seq);
            if (!raw.convert || !continuesCollection(run, p)) return first;
            at.step = 'round hand-over';
            const taken = handoff.take(run, p.round - 1, p.position);
            const c = taken instanceof Promise ? await taken : taken;
            at.step = 'templating';
            const continued = continueCollection(ctx, run, c, raw);
            request = continued instanceof Promise ? await continued : continued;
          } else {
            const req = first.emits.find((e) => e.to === 'requests');
            // A text the preset keeps raw: straight to the mixer.
            if (!req) return await withMixed(first.emits as Emit<Out>[], at);
            request = req.value as SynthesisRequestRecord;
          }
          at.step = 'synthesis';
          const answered = synthesis.spec.handle({ key: rec.key, value: request, headers: rec.headers, timestamp: rec.timestamp, source: rec.source });
          const synthesized = unwrap(answered instanceof Promise ? await answered : answered);
          if ('skip' in synthesized) return synthesized;
          result = synthesized.emits[0]!.value as SynthesisResultRecord;
          deadLetter = synthesized.deadLetter;
        }
        at.step = 'round-feedback';
        const fedBack = feedback.spec.handle({ key: rec.key, value: result, headers: rec.headers, timestamp: rec.timestamp, source: rec.source });
        const fed = unwrap(fedBack instanceof Promise ? await fedBack : fedBack);
        if ('skip' in fed) return fed;
        if (closesSeeded(run, result.round, result.position)) emits.push(...(await closeSeeded(run, result.round, at)));
        for (const e of fed.emits) {
          if (e.to !== 'pool') {
            emits.push(e);
            continue;
          }
          // The changelog record leaves the raw texts out; the next round's text takes the whole collection.
          const c = e.value as RoundCollectionRecord;
          emits.push({ to: 'pool', key: e.key, value: leaveOutContexts(c) });
          if (hasNextText(run, c)) slot?.fill(c);
          else emits.push(...augmentedEmits(closeUnreached(run, c)));
        }
        const mixing = withMixed(emits, at);
        const all = mixing instanceof Promise ? await mixing : mixing;
        return deadLetter === undefined ? all : { emits: all, deadLetter };
      } catch (err) {
        throw new Error(`${at.step}: ${errorText(err)}`);
      } finally {
        slot?.close();
      }
    },
  });
  const stage: Stage<RawTextRecord, Out> = stageOf(spec, {
    // The mixer's tables (general instructions, saved states) are the fused stage's too; the hand-over's spool is its own.
    init: () => mixer.init(),
    close: async () => {
      await Promise.all([handoff.stop(), mixer.close()]);
    },
  });
  return { ...stage, handoff };
}
