import { TopologyTestDriver } from '../../processors/pipeline/topology-test-driver.ts';
import { describe, expect, it } from 'vitest';
import { textProblem } from '../../processors/templating/text-checks.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import { cannedPairs } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { rawTextProblem, refusedPlace, refusedResult } from '../../processors/templating/text-rule.ts';
import { templatingProcessor } from '../../processors/templating/templating-processor.ts';
import { roundFeedbackProcessor } from '../../processors/round-feedback/round-feedback-processor.ts';
import { fusedProcessor } from '../../processors/pipeline/fused-processor.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import type { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { Emit, HandlerResult } from '../../processors/runtime/processor.ts';
import type { MetricEventRecord, MixedTextRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';

const settings = { runId: 'r1', preset: 'none' as const, seed: 5, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words' as const, temperature: 0 };
const topics = pipelineTopics('unit');

/** Just what the stages under test use of a context: the run table, the length estimate and an LLM answering at once. */
function fakeContext(run: RunConfig): PipelineContext {
  return {
    topics,
    // The mixer's tables over empty in-memory topics (no general instructions, no saved state).
    tables: new TopologyTestDriver().tables,
    waitMs: 1000,
    run: () => run,
    estimator: () => wordsEstimate,
    mixTokens: () => (t: string) => Math.ceil(wordsEstimate(t)),
    pool: () => ({ complete: async (req: { prompt: string }) => ({ text: cannedPairs(req.prompt), latencyMs: 1, attempts: 1 }), countTokens: async () => undefined }),
    logger: { warn: () => undefined, info: () => undefined, debug: () => undefined, error: () => undefined },
  } as unknown as PipelineContext;
}

const record = (value: RawTextRecord) => ({ key: `${value.runId}/${value.id}`, value, headers: {}, timestamp: '0', source: { topic: topics.raw, partition: 0, offset: '0' } });

describe('the text rule on raw-text records', () => {
  const good = { id: 'doc-1', text: 'a good text 😀', source: 'another-producer' };

  it('passes what ingest accepts, an empty text and a text of any size (the byte bound is the entry point’s)', () => {
    expect(rawTextProblem(good)).toBeUndefined();
    expect(rawTextProblem({ ...good, text: '' })).toBeUndefined();
    expect(rawTextProblem({ ...good, text: 'x'.repeat(2 << 20) })).toBeUndefined();
    expect(rawTextProblem({ ...good, source: '' })).toBeUndefined();
  });

  it('refuses what ingest refuses, with its phrase and the id', () => {
    for (const text of ['in the \u0000 middle', 'half \ud800 a pair', '\udc01 first']) {
      expect(rawTextProblem({ ...good, text })).toBe(`raw text "doc-1" refused by the text rule: ${textProblem(text)}`);
    }
    expect(rawTextProblem({ ...good, text: 'nul\u0000' })).toMatch(/"text" has a NUL character at character 3$/);
    for (const id of ['a/b', 'a b', '', 'x'.repeat(257), 'tab\there', 'nul\u0000']) {
      expect(rawTextProblem({ ...good, id }), JSON.stringify(id)).toMatch(/refused by the text rule: "id" must be a string of 1–256 characters without whitespace/);
    }
    expect(rawTextProblem({ ...good, source: 'src\u0000' })).toMatch(/"source" has a NUL character at character 3$/);
  });

  it('names an unusable id escaped, and at most its first 256 characters', () => {
    expect(rawTextProblem({ ...good, id: 'nul\u0000id' })).toMatch(/^raw text "nul\\u0000id" refused/);
    expect(rawTextProblem({ ...good, id: 'y'.repeat(1000) })!.length).toBeLessThan(450);
  });

  it('places a refused converted text with a sequence number; one kept raw or without one has no place', () => {
    const { run } = planRun({ ...settings, rounds: 2 }, Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, text: 't', source: 's' })));
    expect(refusedPlace(run, { convert: true, seq: 4 })).toEqual({ round: 1, position: 1 });
    expect(refusedPlace(run, { convert: false, seq: -1 })).toBeUndefined();
    expect(refusedPlace(run, { convert: true, seq: -1 })).toBeUndefined();
  });

  it('stands in for a refused text with a failed result that carries neither its text nor a collection', () => {
    expect(refusedResult({ id: 't1', runId: 'r1' }, { round: 1, position: 2 }, 'why', 7)).toEqual({
      id: 't1',
      runId: 'r1',
      round: 1,
      position: 2,
      text: '',
      fewShot: false,
      collection: [],
      collectionId: 't1',
      outcome: 'failed',
      reason: 'why',
      output: '',
      promptChars: 0,
      promptTokens: 0,
      completionTokens: 0,
      latencyMs: 0,
      attempts: 0,
      finishReason: '',
      finishedAt: 7,
    });
  });
});

describe('staged stages on a refused text', () => {
  const texts = Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, text: `text number ${i}`, source: `f:${i + 1}` }));
  const { run, records } = planRun({ ...settings, rounds: 2 }, texts);
  const ctx = fakeContext(run);
  const templating = templatingProcessor(ctx);
  const feedback = roundFeedbackProcessor(ctx);

  it('templating dead-letters it with the reason; a text with a place also gets a failed result in its stead', async () => {
    const bad = { ...records[1]!, text: 'in the \u0000 middle' };
    const r = (await templating.spec.handle(record(bad))) as { emits: Emit[]; deadLetter: string };
    expect(r.deadLetter).toMatch(/^raw text "t1" refused by the text rule: "text" has a NUL character at character 7$/);
    expect(r.emits).toHaveLength(1);
    expect(r.emits[0]).toMatchObject({ to: 'results', key: 'r1/t1', value: { outcome: 'failed', round: 0, position: 1, text: '', collection: [] } });
    // A text that continues a collection is refused the same way (templating-pool closes that collection).
    const later = (await templating.spec.handle(record({ ...records[4]!, id: 'bad id' }))) as { emits: Emit[]; deadLetter: string };
    expect(later.deadLetter).toMatch(/"id" must be/);
    expect(later.emits[0]).toMatchObject({ to: 'results', value: { id: 'bad id', round: 1, position: 1 } });
    // Without a place, nothing else goes out: the dead letter alone accounts for it.
    const kept: RawTextRecord = { ...records[0]!, convert: false, seq: -1, text: 'nul \u0000' };
    expect(await templating.spec.handle(record(kept))).toEqual({ emits: [], deadLetter: expect.stringMatching(/NUL/) });
    // A good text is templated as before.
    expect(await templating.spec.handle(record(records[0]!))).toEqual([expect.objectContaining({ to: 'requests' })]);
  });

  it('round feedback hands an empty collection on from a refused text’s place, and writes its failed metric event', async () => {
    const r = (await templating.spec.handle(record({ ...records[1]!, text: 'nul \u0000' }))) as { emits: Emit[] };
    const fed = (await feedback.spec.handle({ ...record(records[1]!), value: r.emits[0]!.value as never })) as Emit[];
    const pool = fed.find((e) => e.to === 'pool')!;
    expect(pool.key).toBe('r1/0/1');
    expect(pool.value).toMatchObject({ round: 0, position: 1, collection: [] } satisfies Partial<RoundCollectionRecord>);
    expect(fed.find((e) => e.to === 'metrics')!.value).toMatchObject({ id: 'synthesis/r1/t1', outcome: 'failed', textChars: 0 } satisfies Partial<MetricEventRecord>);
    // In the last round nothing is templated from it.
    const last = (await templating.spec.handle(record({ ...records[5]!, text: 'nul \u0000' }))) as { emits: Emit[] };
    const fedLast = (await feedback.spec.handle({ ...record(records[5]!), value: last.emits[0]!.value as never })) as Emit[];
    expect(fedLast.map((e) => e.to)).toEqual(['metrics']);
  });
});

describe('the fused stage on refused texts (2 rounds)', () => {
  /** Runs a run's records through the fused handler in order; what each returned. */
  async function fused(run: RunConfig, records: RawTextRecord[]) {
    const f = fusedProcessor(fakeContext(run));
    const out = new Map<string, HandlerResult<string>>();
    // As the runtime does with a chunk: every handler started in order, each awaited later.
    const pending = records.map((r) => [r.id, f.spec.handle(record(r))] as const);
    for (const [id, p] of pending) out.set(id, await p);
    return out;
  }
  const emitsOf = (r: HandlerResult<string> | undefined): Emit[] => (Array.isArray(r) ? r : r && 'emits' in r ? r.emits : []);

  it('closes the collection a refused text would continue, hands an empty one on from its place, and every other text comes out once', async () => {
    // 8 converted texts: round 0 is t0–t3, round 1 is t4–t7 (text i of round 1 continues collection i of round 0).
    const texts = Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, text: `text number ${i} with some words`, source: `f:${i + 1}` }));
    const { run, records } = planRun({ ...settings, rounds: 2 }, texts);
    const refused = new Set(['t1', 't6']);
    const bad = records.map((r) => (refused.has(r.id) ? { ...r, text: `broken \u0000 ${r.id}` } : r));
    const out = await fused(run, bad);
    for (const id of refused) {
      const r = out.get(id) as { emits: Emit[]; deadLetter: string };
      expect(r.deadLetter, id).toMatch(new RegExp(`^raw text "${id}" refused by the text rule: "text" has a NUL character at character 7$`));
      // Its metric event (outcome failed) follows its dead letter, as "outputs emitted" announces.
      const metrics = r.emits.filter((e) => e.to === 'metrics').map((e) => e.value as MetricEventRecord);
      expect(metrics.map((m) => [m.recordId, m.outcome])).toEqual([[id, 'failed']]);
    }
    // t1 (round 0) starts no collection: t5 goes on zero-shot. t6 refused: collection 2 of round 0 (t2) is closed by it.
    const pool = emitsOf(out.get('t1')).find((e) => e.to === 'pool')!;
    expect(pool.value).toMatchObject({ round: 0, position: 1, collection: [] });
    const mixed = [...out.values()].flatMap(emitsOf).filter((e) => e.to === 'mixed').map((e) => e.value as MixedTextRecord);
    expect(mixed.find((m) => m.textIds.includes('t5'))!.textIds).toEqual(['t5']);
    expect(emitsOf(out.get('t6')).filter((e) => e.to === 'mixed').map((e) => (e.value as MixedTextRecord).textIds)).toEqual([['t2']]);
    const all = mixed.flatMap((m) => m.textIds).sort();
    expect(all).toEqual(['t0', 't2', 't3', 't4', 't5', 't7']);
    // Nothing of a refused text goes on.
    expect(mixed.some((m) => m.text.includes('\u0000'))).toBe(false);
  });

  it('dead-letters a refused text kept raw with no outputs', async () => {
    const texts = Array.from({ length: 4 }, (_, i) => ({ id: `t${i}`, text: `text ${i}`, source: 's' }));
    const { run, records } = planRun({ ...settings, preset: 'from-scratch', convertFraction: 0.5 }, texts);
    const kept = records.find((r) => !r.convert)!;
    const out = await fused(run, [{ ...kept, text: 'nul \u0000' }]);
    expect(out.get(kept.id)).toEqual({ emits: [], deadLetter: expect.stringMatching(/NUL character/) });
  });
});
