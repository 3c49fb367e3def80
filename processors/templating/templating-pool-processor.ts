import { defineProcessor, stageOf, type Emit, type HandlerResult } from '../runtime/processor.ts';
import { PoolContexts } from '../pipeline/pool-contexts.ts';
import { closeCollection, planPrompt, type PromptPlan } from './multi-round.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { hasNextText, seqOf, type RunConfig } from '../pipeline/run-config.ts';
import { recordKey, stageGroup, type PipelineTopics } from '../pipeline/pipeline-topics.ts';
import { templatedRecords } from '../round-feedback/templated-records.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { AugmentedTextRecord, PipelineEntry, RawTextRecord, RoundCollectionRecord, SynthesisRequestRecord } from '../pipeline/records.ts';
import { rawTextProblem } from './text-rule.ts';

/**
 * A collection no text of the next round reaches (the next round is shorter), closed and templated into
 * pre-training text (docs/method.md §3–§4), so it is never lost. Empty when the collection holds no entry.
 */
export function closeUnreached(run: RunConfig, c: RoundCollectionRecord): AugmentedTextRecord[] {
  return templatedRecords(c.runId, c.round, closeCollection(c.collection), run.seed);
}

export const augmentedEmits = (records: AugmentedTextRecord[]): Emit<'augmented'>[] => records.map((a) => ({ to: 'augmented' as const, key: recordKey(a.runId, a.id), value: a }));

/**
 * The request for text i of round r + 1, which continues collection i of round r: few-shot when the history fits the
 * length budget, else zero-shot. Synchronous where the length estimate is.
 */
export function continueCollection(ctx: PipelineContext, run: RunConfig, c: RoundCollectionRecord, raw: RawTextRecord): SynthesisRequestRecord | Promise<SynthesisRequestRecord> {
  const prev = c.collection.length ? c.collection : undefined;
  const request = whenReady(ctx.estimator(run), (estimate) =>
    whenReady(planPrompt(raw.text, prev, { maxModelLen: run.maxModelLen, maxNewTokens: run.maxNewTokens, estimate }), (plan) => continuingRequest(c, raw, plan)),
  );
  if (!(request instanceof Promise)) return request;
  // The estimate failed past its retries (the tokenize endpoint gone beyond the outage budget): the collection is
  // closed as if its history did not fit and the text goes on zero-shot, so neither is left waiting; the synthesis
  // stage measures the text again and reports it if the estimate still fails.
  return request.catch((err: unknown) => {
    ctx.logger.warn({ run: raw.runId, id: raw.id, err: (err as Error).message }, 'few-shot length estimate failed: continuing zero-shot');
    return continuingRequest(c, raw, { prompt: '', collection: prev && closeCollection(prev), fewShot: false });
  });
}

function continuingRequest(c: RoundCollectionRecord, raw: RawTextRecord, plan: PromptPlan): SynthesisRequestRecord {
  const collection = (plan.collection ?? []) as PipelineEntry[];
  return {
    id: raw.id,
    runId: raw.runId,
    round: c.round + 1,
    position: c.position,
    text: raw.text,
    fewShot: plan.fewShot,
    collection,
    collectionId: collection.length ? c.collectionId : raw.id,
    createdAt: Date.now(),
  };
}

/** What templating-pool writes: the next round's prompts, and the collections it closes as pre-training texts. */
export const templatingPoolOutputs = (t: PipelineTopics) => ({
  requests: { topic: t.requests, schema: 'synthesis-request' },
  augmented: { topic: t.augmented, schema: 'augmented-text' },
});

/**
 * A round's collection paired with the text of the next round at its position (`raw`; undefined when the next round
 * has no text there): the text's request, continuing the collection, or the collection closed as pre-training texts
 * when there is no text or the text breaks the text rule. Synchronous where the length estimate is. The staged
 * topology pairs them here, reading the text from its table; the fused stage pairs them in memory (pool-join).
 */
export function pairCollection(ctx: PipelineContext, run: RunConfig, c: RoundCollectionRecord, raw: RawTextRecord | undefined): HandlerResult<'requests' | 'augmented'> | Promise<HandlerResult<'requests' | 'augmented'>> {
  if (raw === undefined || rawTextProblem(raw) !== undefined) {
    const closed = closeUnreached(run, c);
    if (closed.length > 0) return augmentedEmits(closed);
    return { skip: raw === undefined ? 'empty collection with no next-round text' : 'empty collection whose next-round text was refused' };
  }
  return whenReady(continueCollection(ctx, run, c, raw), (request): Emit<'requests'>[] => [{ to: 'requests', key: recordKey(raw.runId, raw.id), value: request }]);
}

/**
 * The round pool → synthesis requests (docs/method.md §3.7). The collection finished at position i of round r is
 * taken, once, by text i of round r + 1 (pairCollection). A collection no text of the next round reaches is closed
 * and templated here (closeUnreached), and so is one whose next text breaks the text rule: templating dead-letters
 * that text and hands an empty collection on from its place (refuse), so the collection ends here. Pairing by
 * position makes the result independent of arrival order.
 */
export function templatingPoolProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  // Texts of later rounds by "<run>/<seq>", the texts each collection is continued with.
  const nextTexts = ctx.tables.follow<RawTextRecord>(t.raw, 'raw-text', (r) => (r.convert && r.round > 0 ? `${r.runId}/${r.seq}` : undefined));
  // Pool records the fused stage wrote leave their raw texts out; those are read by key, on first need.
  const contexts = new PoolContexts(ctx);
  const spec = defineProcessor<RoundCollectionRecord, 'requests' | 'augmented'>({
    name: stageGroup(t, 'templating-pool'),
    input: { topics: [t.pool], schema: 'round-collection' },
    outputs: templatingPoolOutputs(t),
    handle: async ({ value }) => {
      const run = await ctx.run(value.runId);
      const c = await contexts.restore(value);
      const next = { round: c.round + 1, position: c.position };
      const raw = hasNextText(run, { round: c.round, position: c.position }) ? await nextTexts.get(`${c.runId}/${seqOf(run, next)}`, ctx.waitMs) : undefined;
      return pairCollection(ctx, run, c, raw);
    },
  });
  return stageOf(spec, {
    init: () => nextTexts.start(),
    close: async () => {
      await Promise.all([nextTexts.stop(), contexts.stop()]);
    },
  });
}
