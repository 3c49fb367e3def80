import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { TopologyTestDriver } from '../../processors/pipeline/topology-test-driver.ts';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { pipelineTopics, recordKey, stageGroup } from '../../processors/pipeline/pipeline-topics.ts';
import type { MetricEventBatchRecord, MetricEventRecord } from '../../processors/pipeline/records.ts';
import { METRIC_DEFAULTS } from '../../processors/pipeline/records.ts';
import type { Stage } from '../../processors/runtime/processor.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import { templatingProcessor } from '../../processors/templating/templating-processor.ts';
import { templatingPoolProcessor } from '../../processors/templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../../processors/synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../../processors/round-feedback/round-feedback-processor.ts';
import { judgeProcessor } from '../../processors/evaluation/judge-processor.ts';
import { isSampledById } from '../../processors/round-feedback/pair-sample.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import { cannedPairs } from '../../ops/recorded-llm/recorded-completions-server.ts';
import type { LlmClient } from '../../processors/pipeline/llm-port.ts';
import { pipelineOptions } from '../../ops/cli/pipeline-options.ts';
import { startPipeline } from '../../ops/pipeline/start-pipeline.ts';

const topics = pipelineTopics('jdg');
const silent = pino({ level: 'silent' });
const texts = Array.from({ length: 160 }, (_, i) => ({ id: `t${i}`, text: `Text ${i}: ${'the river runs to the sea '.repeat(3 + (i % 5))}`, source: 'jdg' }));
const synthesizer = {
  client: () => ({ complete: async (req: { prompt: string }) => ({ text: cannedPairs(req.prompt), finishReason: 'stop', promptTokens: null, completionTokens: null, latencyMs: 1, attempts: 1 }), countTokens: async () => undefined }),
  tokenEstimator: async () => wordsEstimate,
};

/** A recorded-response judge: relevant always, accurate for the first pair of a text, and every prompt kept. */
function recordedJudge(answer?: (prompt: string) => string): LlmClient & { prompts: string[] } {
  const prompts: string[] = [];
  return {
    prompts,
    complete: async (req) => {
      prompts.push(req.prompt);
      const accurate = /### Instruction\n[^\n]*opens/.test(req.prompt);
      const text = answer?.(req.prompt) ?? JSON.stringify({ relevant: true, accurate, category: 'reading comprehension' });
      return { text, finishReason: 'stop', promptTokens: null, completionTokens: null, latencyMs: 1, attempts: 1 };
    },
    countTokens: async () => undefined,
  };
}

async function run(driver: TopologyTestDriver, build: (ctx: PipelineContext) => Stage<never, string>[], waitMs = 5000): Promise<void> {
  const ctx = new PipelineContext(driver.tables, topics, synthesizer, silent, waitMs);
  await ctx.start();
  const stages = build(ctx);
  for (const s of stages) await s.init();
  try {
    await driver.run(stages);
  } finally {
    for (const s of stages) await s.close();
    await ctx.stop();
  }
}

const events = (driver: TopologyTestDriver) => driver.read<MetricEventBatchRecord>(topics.metrics, 'metric-event-batch').flatMap((b) => b.value.events);

describe('the judge stage (broker-less, through the test driver)', () => {
  it('judges the pairs of the texts sampled by id as they are synthesized, each against its whole text, up to the cap per run and round', async () => {
    const driver = new TopologyTestDriver(4);
    const { run: cfg, records } = planRun({ runId: 'jdg-1', preset: 'none', rounds: 2, seed: 1, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0 }, texts, 1_700_000_000_000);
    driver.write(topics.runs, 'run-config', cfg.runId, cfg);
    for (const r of records) driver.write(topics.raw, 'raw-text', recordKey(r.runId, r.id), r);
    const judge = recordedJudge();
    const perRound = 5;
    await run(driver, (ctx) => [templatingProcessor(ctx), templatingPoolProcessor(ctx), synthesisProcessor(ctx), roundFeedbackProcessor(ctx), judgeProcessor(ctx, judge, { model: 'recorded-judge', perRound })] as unknown as Stage<never, string>[]);

    const all = events(driver);
    const synthesis = all.filter((e) => e.kind === 'synthesis');
    const verdicts = all.filter((e) => e.kind === 'judgement');
    expect(synthesis).toHaveLength(160);
    // What each round could give: the pairs of its texts sampled by id.
    for (const round of [0, 1]) {
      const candidates = synthesis.filter((e) => e.round === round && isSampledById(e.recordId)).reduce((n, e) => n + e.pairs, 0);
      expect(candidates, `round ${round} has more candidates than the cap`).toBeGreaterThan(perRound);
      const mine = verdicts.filter((e) => e.round === round);
      expect(mine).toHaveLength(perRound);
      for (const v of mine) expect(isSampledById(v.recordId)).toBe(true);
    }
    // Each verdict: the id `ipt judge` uses, the pair as synthesized, the judge's answer read.
    for (const v of verdicts) {
      const j = v.judgement!;
      expect(v.id).toBe(`jdg-1/${v.round}/${v.recordId}/${j.pairIndex}/recorded-judge`);
      const source = synthesis.find((e) => e.recordId === v.recordId && e.round === v.round)!;
      expect([j.question, j.answer]).toEqual([source.sample!.pairs[j.pairIndex]!.question, source.sample!.pairs[j.pairIndex]!.answer]);
      expect(j).toMatchObject({ judged: true, relevant: true, category: 'reading comprehension', error: '', judgeModel: 'recorded-judge' });
    }
    // Every prompt carries a whole raw text (not the sample's start), and one prompt per verdict.
    expect(judge.prompts).toHaveLength(verdicts.length);
    const whole = new Set(texts.map((t) => t.text));
    for (const p of judge.prompts) expect(whole.has(/### Text\n([\s\S]*?)\n\n### Instruction/.exec(p)![1]!)).toBe(true);
    // Nothing dead-lettered; its own verdicts came back to it and were skipped.
    expect(driver.deadLetters(stageGroup(topics, 'judge'))).toEqual([]);
  });

  it('judges on the sample’s start when the text is gone, and records an unreadable answer or a failed judge as such', async () => {
    const driver = new TopologyTestDriver(2);
    const id = Array.from({ length: 400 }, (_, i) => `gone-${i}`).find(isSampledById)!;
    const event: MetricEventRecord = {
      ...METRIC_DEFAULTS,
      id: `synthesis/jdg-2/${id}`,
      kind: 'synthesis',
      runId: 'jdg-2',
      recordId: id,
      time: 1,
      outcome: 'ok',
      pairs: 3,
      sample: { context: 'The start of a long text', contextChars: 5000, pairs: [0, 1, 2].map((i) => ({ question: `Q${i}?`, answer: `A${i}.`, kind: 'free' })) },
    };
    driver.write(topics.metrics, 'metric-event-batch', recordKey('jdg-2', 'metric-events'), { events: [event] });
    const judge = recordedJudge((p) => {
      if (p.includes('Q1?')) return 'I think it is fine.';
      if (p.includes('Q2?')) throw new Error('HTTP 503 past the deadline');
      return JSON.stringify({ relevant: false, accurate: false, category: 'other' });
    });
    await run(driver, (ctx) => [judgeProcessor(ctx, judge, { model: 'j', perRound: 10 })] as unknown as Stage<never, string>[], 200);
    const verdicts = events(driver).filter((e) => e.kind === 'judgement').sort((a, b) => a.judgement!.pairIndex - b.judgement!.pairIndex);
    expect(verdicts.map((v) => [v.outcome, v.judgement!.judged, v.judgement!.error.slice(0, 30)])).toEqual([
      ['ok', true, ''],
      ['failed', false, 'no JSON object in the answer'],
      ['failed', false, 'the judge failed: HTTP 503 pas'],
    ]);
    // The judge was told it sees only the beginning of the text.
    for (const p of judge.prompts) expect(p).toContain('### Text (only its beginning is shown)\nThe start of a long text\n');
  });

  it('runs where a judge is configured: the flags give its settings, and --stages judge without a judge URL is refused', () => {
    expect(() => pipelineOptions('pipeline up', { stages: 'judge' }, {})).toThrow(/pipeline up: --stages judge needs a judge URL \(--judge-url, IPT_JUDGE_URL\)/);
    expect(pipelineOptions('pipeline up', {}, {}).judge).toBeUndefined();
    expect(pipelineOptions('pipeline up', { 'judge-url': 'http://127.0.0.1:9/v1', 'judge-per-round': '7' }, { IPT_JUDGE_MODEL: 'big-judge' }).judge).toEqual({ endpoints: ['http://127.0.0.1:9/v1'], model: 'big-judge', guided: 'gbnf', perRound: 7 });
  });

  it('startPipeline refuses the judge stage asked for by name without a judge, before it touches Kafka', async () => {
    // No broker answers on port 9: a refusal that came after creating topics would be a connection error instead.
    const opts = { ...pipelineOptions('pipeline up', {}, { IPT_KAFKA_BROKERS: '127.0.0.1:9' }), logger: pino({ level: 'silent' }) };
    await expect(startPipeline({ ...opts, stages: ['judge'] })).rejects.toThrow('the judge stage needs a judge URL (--judge-url, IPT_JUDGE_URL)');
    await expect(startPipeline({ ...opts, stages: ['fused', 'mixing'] })).rejects.toThrow('the fused stage replaces mixing');
  });
});
