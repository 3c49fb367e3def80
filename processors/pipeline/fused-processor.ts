import { defineProcessor, type Emit, type HandlerResult, type InputRecord } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { templatingProcessor } from '../templating/templating-processor.ts';
import { augmentedEmits, closeUnreached, continueCollection } from '../templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../round-feedback/round-feedback-processor.ts';
import { mixingOutputs, mixingProcessor, type MixOut } from '../mixing/mixing-processor.ts';
import { CollectionHandoff, type HandoffSlot } from './collection-handoff.ts';
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

/** The step a text is in, so a failure names it. */
interface Progress {
  step: string;
}

/**
 * Templating → synthesis → round feedback → mixing chained in memory, in one processor over the raw-text topic (the
 * fused topology; Kafka Streams fuses a sub-topology's operators the same way). It runs the same stage functions as
 * the staged topology and writes what they write except the requests and results in between: collections to the
 * round pool (the changelog that restores the hand-over between rounds and that `ipt rounds start` reads), augmented
 * texts (what each text became), the mixed stream and the mixer's changelog, one metric event per synthesized text.
 * Text i of round r + 1 takes collection i of round r from the previous text's handler (CollectionHandoff) rather
 * than through the pool topic. A failure in any step dead-letters the raw text, naming the step. Like the mixer, it
 * runs as one instance per topic prefix (its mix counts are per run); one process drives many LLM endpoints.
 */
export function fusedProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  const templating = templatingProcessor(ctx);
  const synthesis = synthesisProcessor(ctx);
  const feedback = roundFeedbackProcessor(ctx);
  const mixer = mixingProcessor(ctx);
  const handoff = new CollectionHandoff(ctx);

  /** Augmented texts are written (the record of what each text became) and mixed here, in the order they finish. */
  const withMixed = async (emits: Emit<Out>[], at: Progress): Promise<Emit<Out>[]> => {
    const out: Emit<Out>[] = [];
    for (const e of emits) {
      out.push(e);
      if (e.to !== 'augmented') continue;
      at.step = 'mixing';
      const mixed = unwrap(await mixer.mix(e.value as AugmentedTextRecord));
      if (!('skip' in mixed)) out.push(...mixed.emits);
    }
    return out;
  };

  /**
   * A run replayed from round N > 0 starts from round N − 1's collections in the round pool; those no text of round
   * N reaches are closed by the round's last text (in the staged topology, templating-pool closes them).
   */
  const closeSeeded = async (run: RunConfig, round: number, position: number, at: Progress): Promise<Emit<Out>[]> => {
    if (run.startRound === 0 || round !== run.startRound || position !== roundLength(run, round) - 1) return [];
    const out: Emit<Out>[] = [];
    at.step = 'round hand-over';
    for (let j = roundLength(run, round); j < roundLength(run, round - 1); j++) {
      const c = await handoff.take(run, round - 1, j);
      out.push(...augmentedEmits(closeUnreached(run, c)));
    }
    return out;
  };

  const chain = async (rec: InputRecord<RawTextRecord>, slot: HandoffSlot | undefined, at: Progress): Promise<HandlerResult<Out>> => {
    const raw = rec.value;
    const first = unwrap(await templating.handle(rec));
    const run = await ctx.run(raw.runId);
    let request: SynthesisRequestRecord;
    if ('skip' in first) {
      const p = placement(run, raw.seq);
      if (!raw.convert || !continuesCollection(run, p)) return first;
      at.step = 'round hand-over';
      const c = await handoff.take(run, p.round - 1, p.position);
      at.step = 'templating';
      request = await continueCollection(ctx, run, c, raw);
    } else {
      const req = first.emits.find((e) => e.to === 'requests');
      // A text the preset keeps raw: straight to the mixer.
      if (!req) return withMixed(first.emits.filter((e) => e.to === 'augmented') as Emit<Out>[], at);
      request = req.value as SynthesisRequestRecord;
    }
    at.step = 'synthesis';
    const synthesized = unwrap(await synthesis.handle({ key: rec.key, value: request, headers: rec.headers, timestamp: rec.timestamp, source: rec.source }));
    if ('skip' in synthesized) return synthesized;
    const result = synthesized.emits[0]!.value as SynthesisResultRecord;
    at.step = 'round-feedback';
    const fed = unwrap(await feedback.handle({ key: rec.key, value: result, headers: rec.headers, timestamp: rec.timestamp, source: rec.source }));
    if ('skip' in fed) return fed;
    const emits: Emit<Out>[] = await closeSeeded(run, request.round, request.position, at);
    for (const e of fed.emits) {
      emits.push(e);
      if (e.to !== 'pool') continue;
      const c = e.value as RoundCollectionRecord;
      if (hasNextText(run, c)) slot?.fill(c);
      else emits.push(...augmentedEmits(closeUnreached(run, c)));
    }
    const all = await withMixed(emits, at);
    return synthesized.deadLetter === undefined ? all : { emits: all, deadLetter: synthesized.deadLetter };
  };

  const spec = defineProcessor<RawTextRecord, Out>({
    name: stageGroup(t, 'fused'),
    input: { topics: [t.raw], schema: 'raw-text' },
    // What round feedback writes (pool, augmented, metrics) and what the mixer writes.
    outputs: { ...feedback.outputs, ...mixingOutputs(t) },
    handle: async (rec) => {
      const raw = rec.value;
      // Opened before the first await, so the text that continues this one's collection finds the slot.
      const slot = raw.convert && raw.seq >= 0 ? handoff.open(raw.runId, raw.seq) : undefined;
      const at: Progress = { step: 'templating' };
      try {
        return await chain(rec, slot, at);
      } catch (err) {
        throw new Error(`${at.step}: ${errorText(err)}`);
      } finally {
        slot?.close();
      }
    },
  });
  return {
    spec,
    handoff,
    start: () => mixer.start(),
    stop: async () => {
      await Promise.all([handoff.stop(), mixer.stop()]);
    },
  };
}
