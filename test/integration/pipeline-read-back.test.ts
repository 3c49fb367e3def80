import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { ReadBackTable } from '../../processors/runtime/read-back-table.ts';
import type { PipelineRunSummary } from '../../ops/jobs/pipeline-run.ts';
import { pretrainingTextsOf, cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
  delete process.env.IPT_FUSED_MAX_HELD;
  delete process.env.IPT_FUSED_READ_BACK_MAX;
});

const outcome = (s: PipelineRunSummary) => ({
  ingested: s.ingested,
  augmented: s.augmented,
  raw: s.raw,
  deadLettered: s.deadLettered,
  pairs: s.pairs,
  outputTexts: s.outputTexts,
  perRound: s.perRound.map((r) => ({ round: r.round, texts: r.texts, fewShot: r.fewShot, pairs: r.pairs })),
  mixed: s.mixed,
});

describe('the fused stage reading collections back with small bounds', () => {
  it('gives the same mixed texts when most collections are evicted and read back through tiny tables', async () => {
    const { path } = writeCorpus(tmp(), 300, 'read-back.jsonl', 'rb');
    const free = isolated();
    // Chunks of 10, each written before the next is read: a collection evicted from a hand-over of 40 is in the topic
    // (one still being written cannot be read back, so the hand-over must hold more than a chunk window).
    const small = { IPT_BATCH_SIZE: '10', IPT_MAX_INFLIGHT_BATCHES: '1' };
    const a = await runOnStack(free, path, { 'llm-url': server.url, rounds: '2', seed: '9', run: 'same', topology: 'fused' }, {}, undefined, small);
    // The hand-over holds 40 collections, so most of round 0's 150 are evicted; each read-back holds 20 ahead.
    process.env.IPT_FUSED_MAX_HELD = '40';
    process.env.IPT_FUSED_READ_BACK_MAX = '20';
    const gets = vi.spyOn(ReadBackTable.prototype, 'get');
    const capped = isolated();
    const b = await runOnStack(capped, path, { 'llm-url': server.url, rounds: '2', seed: '9', run: 'same', topology: 'fused' }, {}, undefined, small);
    const asked = gets.mock.instances.map((t) => (t as unknown as ReadBackTable<unknown>).topic);
    gets.mockRestore();
    expect(asked.filter((t) => t.endsWith('.round.pool')).length).toBeGreaterThan(80);
    expect(outcome(b)).toEqual(outcome(a));
    expect(b.augmented).toBe(300);
    expect(await pretrainingTextsOf(capped.prefix, b.runId)).toEqual(await pretrainingTextsOf(free.prefix, a.runId));
  });
});
