import { defineProcessor, stageOf, type Emit, type HandlerResult } from '../runtime/processor.ts';
import { inOrder } from '../runtime/concurrency.ts';
import { MixSampler } from './mix-sampler.ts';
import { recordKey, stageGroup, type PipelineTopics } from '../pipeline/pipeline-topics.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { AugmentedTextRecord, MixedTextRecord, MixerStateRecord, RawTextRecord } from '../pipeline/records.ts';
import type { RunConfig } from '../pipeline/run-config.ts';

export type MixOut = 'mixed' | 'state';

/** A mixed record at the run's next mix index. */
function mixedEmit(state: MixerStateRecord, m: Omit<MixedTextRecord, 'mixIndex'>): Emit<MixOut> {
  const value: MixedTextRecord = { id: m.id, runId: m.runId, source: m.source, sourceId: m.sourceId, text: m.text, tokens: m.tokens, mixIndex: state.mixIndex++, round: m.round, textIds: m.textIds, pairs: m.pairs };
  return { to: 'mixed', key: recordKey(m.runId, m.id), value };
}
const DOMAIN = 0;
const GENERAL = 1;

/** The mixer's outputs: the mixed stream (one partition: its order is the mix order) and the per-run counts' changelog. */
export const mixingOutputs = (t: PipelineTopics) => ({
  mixed: { topic: t.mixed, schema: 'mixed-text', partitions: 1 },
  state: { topic: t.mixerState, schema: 'mixer-state', partitions: 1, latestPerKey: true },
});

/**
 * Augmented texts (converted, or kept raw by the preset) + general instructions → the mixed training stream, by
 * token weight (docs/method.md §5). Every domain text is emitted as it arrives; general instructions, read in topic order,
 * fill in whenever their deficit w·T − t is the largest, so the general share stays within one record of its
 * target at every prefix. The per-run counts go to a compacted changelog in the same batch as the outputs (the
 * same transaction under exactly-once), and a restarted mixer goes on from them.
 */
export function mixingProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  // General instructions are ingested per run; each run's are kept in topic order under "<run>/<index>".
  const counts = new Map<string, number>();
  const general = ctx.tables.follow<RawTextRecord>(t.general, 'raw-text', (g) => {
    const i = counts.get(g.runId) ?? 0;
    counts.set(g.runId, i + 1);
    return `${g.runId}/${i}`;
  });
  // A run's counts only grow, so its newest state is the one with the highest mix index, not always the last record:
  // two chunks' produce requests in flight at once can reach the broker in either order, and a standby taking over
  // (or a restarted mixer) that went on from the older one would hand out mix indices twice.
  const newest = new Map<string, MixerStateRecord>();
  const saved = ctx.tables.follow<MixerStateRecord>(t.mixerState, 'mixer-state', (s) => {
    const had = newest.get(s.runId);
    if (!had || s.mixIndex >= had.mixIndex) newest.set(s.runId, s);
    return undefined;
  });
  const states = new Map<string, { sampler: MixSampler; state: MixerStateRecord }>();
  // Each run's counts as of the last commit: when the runtime drops records it handled but did not commit (a failed
  // transaction, say), they are mixed again from these, so no mix index is skipped and no general instruction lost.
  const committed = new Map<string, MixerStateRecord>();
  const checkpoint = {
    committed() {
      for (const [runId, { state }] of states) committed.set(runId, { ...state, emittedTokens: [...state.emittedTokens] });
    },
    abandoned() {
      states.clear();
    },
  };
  /** The newer of the changelog's state (it may lag behind) and the one kept at the last commit. */
  const savedState = (runId: string): MixerStateRecord | undefined => {
    const [a, b] = [newest.get(runId), committed.get(runId)];
    return a && b ? (b.mixIndex >= a.mixIndex ? b : a) : (a ?? b);
  };
  const tokensOf = ctx.mixTokens();
  // Per-run counts change in record order: each handler's update is queued when it is called, in input order.
  const serially = inOrder();

  const stateOf = (run: RunConfig) => {
    let s = states.get(run.runId);
    if (!s) {
      const sampler = new MixSampler([
        { name: 'domain', weight: 1 - run.generalWeight },
        { name: 'general', weight: run.generalWeight },
      ]);
      const state = savedState(run.runId) ?? { runId: run.runId, emittedTokens: [0, 0], generalCursor: 0, generalLeft: run.generalWeight === 0, mixIndex: 0, updatedAt: 0 };
      sampler.emitted[DOMAIN] = state.emittedTokens[DOMAIN]!;
      sampler.emitted[GENERAL] = state.emittedTokens[GENERAL]!;
      sampler.total = sampler.emitted[DOMAIN]! + sampler.emitted[GENERAL]!;
      if (state.generalLeft) sampler.leave(GENERAL);
      states.set(run.runId, (s = { sampler, state: { ...state } }));
    }
    return s;
  };

  type RunMix = ReturnType<typeof stateOf>;

  /** The run's counts after a step, as its changelog record, closing the step's emits. */
  const closeStep = (runId: string, { sampler, state }: RunMix, emits: Emit<MixOut>[]): Emit<MixOut>[] => {
    state.emittedTokens = [sampler.emitted[DOMAIN]!, sampler.emitted[GENERAL]!];
    state.updatedAt = Date.now();
    emits.push({ to: 'state', key: runId, value: { ...state } });
    return emits;
  };

  /** General instructions while their deficit is the largest (asynchronous: their token counts may be). */
  const fillGeneral = async (a: AugmentedTextRecord, run: RunConfig, m: RunMix, emits: Emit<MixOut>[]): Promise<Emit<MixOut>[]> => {
    const { sampler, state } = m;
    while (sampler.next() === GENERAL) {
      let g = general.peek(`${a.runId}/${state.generalCursor}`);
      if (!g && run.generalOnExhausted === 'restart' && state.generalCursor > 0) g = general.peek(`${a.runId}/${(state.generalCursor = 0)}`);
      if (!g) {
        sampler.leave(GENERAL);
        state.generalLeft = true;
        break;
      }
      const gt = await tokensOf(g.text);
      emits.push(mixedEmit(state, { id: `general/${state.generalCursor}/${state.mixIndex}`, runId: a.runId, source: 'general', sourceId: g.id, text: g.text, tokens: gt, round: 0, textIds: [], pairs: 0 }));
      sampler.record(GENERAL, gt);
      state.generalCursor++;
    }
    return closeStep(a.runId, m, emits);
  };

  /** One augmented text into the run's mix: it, then any general instructions whose deficit is now the largest. */
  const mixInto = (a: AugmentedTextRecord, run: RunConfig, tokens: number): Emit<MixOut>[] | Promise<Emit<MixOut>[]> => {
    const m = stateOf(run);
    const emits = [mixedEmit(m.state, { id: a.id, runId: a.runId, source: a.converted ? 'augmented' : 'raw', sourceId: a.id, text: a.text, tokens, round: a.round, textIds: a.textIds, pairs: a.pairs })];
    m.sampler.record(DOMAIN, tokens);
    return m.sampler.next() === GENERAL ? fillGeneral(a, run, m, emits) : closeStep(a.runId, m, emits);
  };

  /** Synchronous where the run and the token count are known and no earlier step is pending. */
  const mix = (a: AugmentedTextRecord): HandlerResult<MixOut> | Promise<HandlerResult<MixOut>> => {
    if (a.text === '') return { skip: 'empty text: nothing to train on' };
    const tokens = tokensOf(a.text);
    return serially(() => {
      const run = ctx.run(a.runId);
      return run instanceof Promise || tokens instanceof Promise ? Promise.all([run, tokens]).then(([r, n]) => mixInto(a, r, n)) : mixInto(a, run, tokens);
    });
  };

  const spec = defineProcessor<AugmentedTextRecord, MixOut>({
    name: stageGroup(t, 'mixing'),
    input: { topics: [t.augmented], schema: 'augmented-text' },
    outputs: mixingOutputs(t),
    handle: (rec) => mix(rec.value),
    checkpoint,
  });
  const stage = stageOf(spec, {
    init: async () => {
      await general.start();
      await saved.start();
      await Promise.all([general.ready(), saved.ready()]);
    },
    close: async () => {
      await general.stop();
      await saved.stop();
    },
  });
  return { ...stage, mix };
}
