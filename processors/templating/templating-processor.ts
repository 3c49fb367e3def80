import { defineProcessor, stageOf, type HandlerResult } from '../runtime/processor.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { continuesCollection, placement, type RunConfig } from '../pipeline/run-config.ts';
import { recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { AugmentedTextRecord, RawTextRecord, SynthesisRequestRecord } from '../pipeline/records.ts';
import { rawTextProblem, refusedPlace, refusedResult } from './text-rule.ts';

/**
 * Raw texts → synthesis requests. A text that starts a collection (round 0, or a position the previous round did
 * not reach) gets its zero-shot prompt (docs/method.md §1) here; a text that continues a previous-round collection is
 * prompted when that collection reaches the round pool (templating-pool), so here it is a counted skip. A text the
 * preset keeps raw goes straight to the augmented-text topic, marked unconverted. A text that breaks the ingest
 * text rule (written to the topic by another producer) is dead-lettered with the rule's reason (refuse).
 */
export function templatingProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  return stageOf(
    defineProcessor<RawTextRecord, 'requests' | 'augmented' | 'results'>({
    name: stageGroup(t, 'templating'),
    input: { topics: [t.raw], schema: 'raw-text' },
    outputs: {
      requests: { topic: t.requests, schema: 'synthesis-request' },
      augmented: { topic: t.augmented, schema: 'augmented-text' },
      // Only the `failed` result standing in for a refused text (refuse).
      results: { topic: t.results, schema: 'synthesis-result' },
    },
    handle: ({ value: raw }) => {
      const problem = rawTextProblem(raw);
      if (problem !== undefined) {
        // No place in the rounds, so nothing waits for it: the dead letter alone (no outputs) accounts for it.
        if (!raw.convert || raw.seq < 0) return { emits: [], deadLetter: problem };
        return whenReady(ctx.run(raw.runId), (run) => refuse(raw, run, problem));
      }
      return whenReady(ctx.run(raw.runId), (run) => template(raw, run));
    },
  }),
  );
}

/**
 * A refused text: dead-lettered with the reason and never passed on. One with a place in the rounds is also stood in
 * for by a `failed` result (refusedResult), so round feedback hands its place on and writes its metric event; a
 * collection it would have continued is closed by templating-pool (or the fused stage), which sees the same rule.
 */
export function refuse(raw: RawTextRecord, run: RunConfig, reason: string): HandlerResult<'results'> {
  const p = refusedPlace(run, raw);
  if (!p) return { emits: [], deadLetter: reason };
  return { emits: [{ to: 'results', key: recordKey(raw.runId, raw.id), value: refusedResult(raw, p, reason) }], deadLetter: reason };
}

/** A raw text's request, its augmented text when the preset keeps it raw, or a skip when the round pool prompts it. */
export function template(raw: RawTextRecord, run: RunConfig): HandlerResult<'requests' | 'augmented'> {
  const key = recordKey(raw.runId, raw.id);
  if (!raw.convert) {
    const kept: AugmentedTextRecord = { id: raw.id, runId: raw.runId, round: 0, converted: false, text: raw.text, textIds: [raw.id], pairs: 0, layout: 'raw', inverted: false, createdAt: Date.now() };
    return [{ to: 'augmented', key, value: kept }];
  }
  if (raw.seq < 0) throw new Error(`text ${raw.id} of run ${raw.runId} is to be converted but has no sequence number`);
  const p = placement(run, raw.seq);
  if (continuesCollection(run, p)) return { skip: 'continues a previous-round collection: prompted from the round pool' };
  const request: SynthesisRequestRecord = {
    id: raw.id,
    runId: raw.runId,
    round: p.round,
    position: p.position,
    text: raw.text,
    fewShot: false,
    collection: [],
    collectionId: raw.id,
    createdAt: Date.now(),
  };
  return [{ to: 'requests', key, value: request }];
}
