import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { TopologyTestDriver } from '../../processors/pipeline/topology-test-driver.ts';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { pipelineTopics, recordKey } from '../../processors/pipeline/pipeline-topics.ts';
import { placement, type RunConfig } from '../../processors/pipeline/run-config.ts';
import type { MixedTextRecord, RawTextRecord } from '../../processors/pipeline/records.ts';
import type { Stage } from '../../processors/runtime/processor.ts';
import { hashString } from '../../processors/pretrain-text/seeded-random.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import { templatingProcessor } from '../../processors/templating/templating-processor.ts';
import { templatingPoolProcessor } from '../../processors/templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../../processors/synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../../processors/round-feedback/round-feedback-processor.ts';
import { mixingProcessor } from '../../processors/mixing/mixing-processor.ts';
import { fusedProcessor } from '../../processors/pipeline/fused-processor.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import { cannedPairs } from '../../ops/recorded-llm/recorded-completions-server.ts';

const topics = pipelineTopics('drv');
const silent = pino({ level: 'silent' });
const texts = Array.from({ length: 120 }, (_, i) => ({ id: `t${i}`, text: `Text ${i}: ${'lorem ipsum dolor sit amet '.repeat(2 + (i % 7))}`, source: 'drv' }));

/**
 * The LLM: recorded-response pairs, with an answer that depends on the whole prompt (its hash), so that which
 * few-shot history a text was given — what the round hand-over carried — shows in what is mixed.
 */
const answer = (prompt: string) => cannedPairs(prompt).replace('</END>\n', `h${hashString(prompt).toString(36)} </END>\n`);
const llm = {
  client: () => ({ complete: async (req: { prompt: string }) => ({ text: answer(req.prompt), finishReason: 'stop', promptTokens: null, completionTokens: null, latencyMs: 1, attempts: 1 }), countTokens: async () => undefined }),
  tokenEstimator: async () => wordsEstimate,
};

/** A driver holding a run as `pipeline run` writes it: its configuration, then its texts placed by position. */
function withRun(rounds: number, seed = 3): { driver: TopologyTestDriver; run: RunConfig; records: RawTextRecord[] } {
  const driver = new TopologyTestDriver(4);
  const { run, records } = planRun({ runId: `drv-${rounds}`, preset: 'none', rounds, seed, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0 }, texts, 1_700_000_000_000);
  driver.write(topics.runs, 'run-config', run.runId, run);
  const base = hashString(run.runId);
  for (const r of records) driver.write(topics.raw, 'raw-text', recordKey(r.runId, r.id), r, rounds > 1 && r.convert && r.seq >= 0 ? (base + placement(run, r.seq).position) % 4 : undefined);
  return { driver, run, records };
}

async function runStages(driver: TopologyTestDriver, build: (ctx: PipelineContext) => Stage<never, string>[]): Promise<{ handled: number; ms: number }> {
  const ctx = new PipelineContext(driver.tables, topics, llm, silent, 5000);
  await ctx.start();
  const stages = build(ctx);
  for (const s of stages) await s.init();
  const t0 = performance.now();
  try {
    return { handled: await driver.run(stages), ms: performance.now() - t0 };
  } finally {
    for (const s of stages) await s.close();
    await ctx.stop();
  }
}

const staged = (ctx: PipelineContext) => [templatingProcessor(ctx), templatingPoolProcessor(ctx), synthesisProcessor(ctx), roundFeedbackProcessor(ctx), mixingProcessor(ctx)] as unknown as Stage<never, string>[];
let lastFused: ReturnType<typeof fusedProcessor> | undefined;
const fused = (ctx: PipelineContext) => [(lastFused = fusedProcessor(ctx))] as unknown as Stage<never, string>[];

/** What a run trains on: each mixed domain text by id, with its lineage. */
const mixedOf = (driver: TopologyTestDriver) =>
  driver
    .read<MixedTextRecord>(topics.mixed, 'mixed-text')
    .map((r) => r.value)
    .filter((x) => x.source !== 'general')
    .map((x) => ({ id: x.id, source: x.source, text: x.text, textIds: [...x.textIds].sort(), pairs: x.pairs, round: x.round }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe('the broker-less topology test driver', () => {
  it('runs the staged stages to the end: every text is in the mixed stream once, nothing dead-lettered', async () => {
    const { driver } = withRun(2);
    const { handled, ms } = await runStages(driver, staged);
    const mixed = mixedOf(driver);
    expect(mixed.flatMap((m) => m.textIds).sort()).toEqual(texts.map((t) => t.id).sort());
    for (const name of ['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing']) expect(driver.deadLetters(`drv.${name}`)).toEqual([]);
    expect(driver.records(topics.pool).length).toBeGreaterThan(0);
    process.stderr.write(`[driver] staged, 2 rounds, ${texts.length} texts: ${handled} records handled in ${ms.toFixed(0)} ms\n`);
  });

  it('staged and fused are the same computation: the same mixed texts from the same run, 1 to 3 rounds', async () => {
    for (const rounds of [1, 2, 3]) {
      const a = withRun(rounds);
      const b = withRun(rounds);
      await runStages(a.driver, staged);
      const f = await runStages(b.driver, fused);
      const [x, y] = [mixedOf(a.driver), mixedOf(b.driver)];
      expect(y, `${rounds} round(s)`).toEqual(x);
      expect(x.length).toBeGreaterThan(0);
      // The last round's texts were synthesized with the earlier rounds' collections as few-shot history.
      expect(Math.max(...x.map((m) => m.round))).toBe(rounds - 1);
      expect(b.driver.deadLetters('drv.fused')).toEqual([]);
      // Every collection was handed over in memory: the pool's read-back (a restart's path) was not needed.
      expect(lastFused!.handoff.fromTopic).toBe(0);
      process.stderr.write(`[driver] fused, ${rounds} round(s): ${f.handled} records in ${f.ms.toFixed(0)} ms\n`);
    }
  });

  it('the same with a hand-over holding one collection in memory: the rest go to the disk spool and come back', async () => {
    const a = withRun(2);
    const b = withRun(2);
    await runStages(a.driver, staged);
    process.env.IPT_FUSED_MAX_HELD = '1';
    try {
      await runStages(b.driver, fused);
    } finally {
      delete process.env.IPT_FUSED_MAX_HELD;
    }
    expect(mixedOf(b.driver)).toEqual(mixedOf(a.driver));
    expect(lastFused!.handoff.fromDisk).toBeGreaterThan(0);
    expect(lastFused!.handoff.fromTopic).toBe(0);
  });

  it('dead-letters a record the stage refuses, naming why, and goes on with the rest', async () => {
    const { driver, run } = withRun(1);
    driver.write(topics.raw, 'raw-text', recordKey(run.runId, 'bad id'), { id: 'bad id', runId: run.runId, text: 'a text', source: 's', ingestedAt: 0, seq: -1, round: 0, convert: false });
    await runStages(driver, fused);
    expect(driver.deadLetters('drv.fused')).toEqual([{ key: `${run.runId}/bad id`, reason: expect.stringMatching(/refused by the text rule: "id" must be/) }]);
    expect(mixedOf(driver).flatMap((m) => m.textIds)).toHaveLength(texts.length);
  });
});
