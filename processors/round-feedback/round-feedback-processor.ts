import { defineProcessor, stageOf, type Emit } from '../runtime/processor.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { appendEntry, closeCollection } from '../templating/multi-round.ts';
import { parseSynthesizerOutput, plainPairs } from './parse-output.ts';
import { pairQuality } from './quality.ts';
import { pairSample } from './pair-sample.ts';
import { templatedRecords } from './templated-records.ts';
import { metricsOutput, recordKey, stageGroup } from '../pipeline/pipeline-topics.ts';
import { METRIC_DEFAULTS, type MetricEventRecord, type PipelineEntry, type RoundCollectionRecord, type SynthesisResultRecord } from '../pipeline/records.ts';
import type { PipelineContext } from '../pipeline/pipeline-context.ts';
import type { RunConfig } from '../pipeline/run-config.ts';

type Out = 'pool' | 'augmented' | 'metrics';

/**
 * Synthesis results → the round pool or augmented texts, plus a metric event per text. The output is parsed
 * (docs/method.md §2) and appended to its collection with its flags (docs/method.md §3). Before the last round the collection goes to
 * the pool for the next round's text at the same position; after it, the collection is templated (docs/method.md §4).
 * A failed text is left out of its collection (it was dead-lettered) and the collection goes on without it.
 */
export function roundFeedbackProcessor(ctx: PipelineContext) {
  const t = ctx.topics;
  return stageOf(
    defineProcessor<SynthesisResultRecord, Out>({
    name: stageGroup(t, 'round-feedback'),
    input: { topics: [t.results], schema: 'synthesis-result' },
    outputs: {
      pool: { topic: t.pool, schema: 'round-collection' },
      augmented: { topic: t.augmented, schema: 'augmented-text' },
      metrics: metricsOutput(t),
    },
    // No promise to await where the run is known.
    handle: ({ value: r }) => {
      return whenReady(ctx.run(r.runId), (run) => feedBack(r, run));
    },
  }),
  );
}

/** One result into its collection: its metric event, then the collection to the pool, or templated after the last round. */
function feedBack(r: SynthesisResultRecord, run: RunConfig): Emit<Out>[] {
  const parsed = { pieces: 0 };
  const typed = r.outcome === 'ok' ? parseSynthesizerOutput(r.output, parsed) : [];
  const key = recordKey(r.runId, r.id);
  let collection: PipelineEntry[];
  if (r.outcome === 'failed') collection = closeCollection(r.collection);
  else {
    collection = appendEntry(r.collection, r.text, plainPairs(typed)) as PipelineEntry[];
    const entry = collection[collection.length - 1]!;
    entry.contextId = r.id;
    // Its context is the raw text under this key (a pool record may leave it out: leaveOutContexts).
    entry.rawKey = key;
  }
  const q = pairQuality(r.text, typed);
  // Every field written out (no spreads): this runs once per text on the hot path.
  const metric: MetricEventRecord = {
    id: `synthesis/${r.runId}/${r.id}`,
    kind: 'synthesis',
    runId: r.runId,
    round: r.round,
    recordId: r.id,
    time: r.finishedAt || Date.now(),
    outcome: r.outcome,
    fewShot: r.fewShot,
    pairs: q.pairs,
    parsedPieces: parsed.pieces,
    parseOk: typed.length > 0,
    kindFree: q.kindFree,
    kindMc: q.kindMc,
    kindCot: q.kindCot,
    kindMcCot: q.kindMcCot,
    textChars: r.text.length,
    outputChars: r.output.length,
    questionChars: q.questionChars,
    answerChars: q.answerChars,
    grounding: q.grounding,
    latencyMs: r.latencyMs,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    finishReason: r.finishReason,
    dataset: METRIC_DEFAULTS.dataset,
    shots: METRIC_DEFAULTS.shots,
    seen: METRIC_DEFAULTS.seen,
    f1: METRIC_DEFAULTS.f1,
    exactMatch: METRIC_DEFAULTS.exactMatch,
    response: METRIC_DEFAULTS.response,
    sample: pairSample(r.id, r.position, r.text, typed),
    judgement: null,
  };
  const emits: Emit<Out>[] = [{ to: 'metrics', key, value: metric }];
  if (r.round < run.rounds - 1) {
    const pooled: RoundCollectionRecord = { runId: r.runId, round: r.round, position: r.position, collectionId: collection[0]?.contextId ?? r.id, collection, finishedAt: Date.now() };
    emits.push({ to: 'pool', key: recordKey(r.runId, `${r.round}/${r.position}`), value: pooled });
  } else {
    for (const a of templatedRecords(r.runId, r.round, collection, run.seed)) emits.push({ to: 'augmented', key: recordKey(r.runId, a.id), value: a });
  }
  return emits;
}
