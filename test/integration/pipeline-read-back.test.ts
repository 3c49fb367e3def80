import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { ReadBackTable } from '../../processors/runtime/read-back-table.ts';
import { DiskSpool } from '../../processors/runtime/disk-spool.ts';
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

describe('the fused stage holding few collections in memory', () => {
  it('gives the same mixed texts when most collections go to the disk spool and come back from it', async () => {
    const { path } = writeCorpus(tmp(), 300, 'read-back.jsonl', 'rb');
    const free = isolated();
    const small = { IPT_BATCH_SIZE: '10', IPT_MAX_INFLIGHT_BATCHES: '1' };
    const a = await runOnStack(free, path, { 'llm-url': server.url, rounds: '2', seed: '9', run: 'same', topology: 'fused' }, {}, undefined, small);
    // The hand-over holds 40 collections in memory, so most of round 0's 150 go to disk, and are taken from there.
    process.env.IPT_FUSED_MAX_HELD = '40';
    process.env.IPT_FUSED_READ_BACK_MAX = '20';
    const gets = vi.spyOn(ReadBackTable.prototype, 'get');
    const takes = vi.spyOn(DiskSpool.prototype, 'take');
    const capped = isolated();
    const b = await runOnStack(capped, path, { 'llm-url': server.url, rounds: '2', seed: '9', run: 'same', topology: 'fused' }, {}, undefined, small);
    const asked = gets.mock.instances.map((t) => (t as unknown as ReadBackTable<unknown>).topic);
    const fromDisk = takes.mock.calls.length;
    gets.mockRestore();
    takes.mockRestore();
    expect(fromDisk).toBeGreaterThan(80);
    // Nothing this process held is read back from the topics: those are for a restart, a rebalance or a replay.
    expect(asked.filter((t) => t.endsWith('.round.pool'))).toEqual([]);
    expect(outcome(b)).toEqual(outcome(a));
    expect(b.augmented).toBe(300);
    expect(await pretrainingTextsOf(capped.prefix, b.runId)).toEqual(await pretrainingTextsOf(free.prefix, a.runId));
  });
});
