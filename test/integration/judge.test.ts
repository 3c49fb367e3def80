import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSampledById } from '../../processors/round-feedback/pair-sample.ts';
import { clickhouseClient, queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { judgeRun, type JudgeOptions } from '../../ops/jobs/judge.ts';
import { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { JUDGE_CATEGORIES, judgeGrammarGbnf } from '../../processors/evaluation/judge.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { testKafka } from './helpers.ts';
import { cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';

// A finished 2-round run of 12 texts (made-up pairs: "Which word opens the text?", "Which word closes the text?"):
// every text is in the dashboard's sample (each round's first 8), some also by id (one in 16).
const iso = isolated();
let runId = '';
let texts = new Map<string, string>();
let synthServer: RecordedCompletionsServer;
beforeAll(async () => {
  synthServer = await cannedServer();
  const corpus = writeCorpus(tmp(), 12, 'judge.jsonl', 'judged');
  texts = new Map(corpus.texts.map((t) => [t.id, t.text]));
  const s = await runOnStack(iso, corpus.path, { 'llm-url': synthServer.url, rounds: '2' });
  expect(s.augmented).toBe(12);
  runId = s.runId;
}, 180_000);
afterAll(() => synthServer.stop());

function options(judge: SynthesisPool, judgeModel: string, sample: number): JudgeOptions {
  return {
    ch: clickhouseClient(inject('stack').clickhouseUrl, iso.database),
    kafka: testKafka(),
    serde: new AvroSerde(inject('stack').registryUrl),
    topics: pipelineTopics(iso.prefix),
    runId,
    sample,
    seed: 1,
    judge,
    judgeModel,
  };
}

describe('the LLM judge over a finished run', () => {
  it('judges a uniform sample per round against the whole texts, stores the verdicts as they come, and reports rates with intervals (recorded-response judge: the protocol)', async () => {
    // What each round draws from: its texts sampled by id, or all its texts where it has none (6 texts a round, 2 pairs each).
    const ids = [...texts.keys()];
    const pool = (round: number) => {
      const mine = ids.slice(round * 6, round * 6 + 6);
      const byId = mine.filter((id) => isSampledById(id));
      return byId.length > 0 ? byId : mine;
    };
    const pools = [pool(0), pool(1)];
    // Keyed on the pair's instruction: "opens" is judged accurate, "closes" not; one text's "closes" pair gets an answer
    // outside the grammar.
    const odd = texts.get(pools[0]![0]!)!;
    const instruction = (prompt: string) => /### Instruction\n([^\n]*)\n/.exec(prompt)?.[1];
    const recorded = new RecordedCompletionsServer({ unreadable: '{"relevant": true, "accurate": true, "category": "poetry"}' }, undefined, (q) => JSON.stringify({ relevant: true, accurate: q.includes('opens'), category: 'reading comprehension' }), (p) => {
      const q = instruction(p);
      return q !== undefined && q.includes('closes') && p.includes(`### Text\n${odd}\n`) ? 'unreadable' : q;
    });
    await recorded.start();
    const judge = new SynthesisPool({ endpoints: [recorded.url], model: 'recorded-judge', extraBody: { grammar: judgeGrammarGbnf() } });
    const all = options(judge, 'recorded-judge', 100);
    try {
      const r = await judgeRun(all);
      expect(r.rounds.map((x) => [x.round, x.byIdOnly, x.candidates, x.sampled])).toEqual(pools.map((p, round) => [round, p.length < 6, 2 * p.length, 2 * p.length]));
      expect(r.sampled).toBe(2 * (pools[0]!.length + pools[1]!.length));
      expect([r.failed, r.unreadable, r.judged]).toEqual([0, 1, r.sampled - 1]);
      expect(r.problems).toEqual([expect.stringMatching(/pair \d: "category" "poetry" is not one of the categories$/)]);
      expect(r.relevant).toMatchObject({ successes: r.judged, n: r.judged, rate: 1, high: 1 });
      expect(r.relevant.low).toBeLessThan(1);
      expect(r.accurate.successes).toBe(r.sampled / 2);
      expect(r.categories).toEqual([{ category: 'reading comprehension', pairs: r.judged, share: 1 }]);
      expect(r.contextFromSample).toBe(0);
      // Each prompt carries its pair's whole text, from the raw topic; each request the judge's grammar.
      expect(recorded.prompts).toHaveLength(r.sampled);
      for (const p of recorded.prompts) expect(pools.flat().map((id) => texts.get(id))).toContain(/### Text\n([\s\S]*?)\n\n### Instruction/.exec(p)![1]);
      for (const e of recorded.extras) expect(e.grammar).toBe(judgeGrammarGbnf());

      // A smaller sample: one pair a round; the run's earlier verdicts by this judge are replaced, not added to.
      const one = await judgeRun({ ...all, sample: 1, seed: 2 });
      expect(one.rounds.map((x) => x.sampled)).toEqual([1, 1]);
      const stored = async () => (await queryRows<{ n: string }>(all.ch, `SELECT count() AS n FROM judgements FINAL WHERE run_id = '${runId}' AND judge_model = 'recorded-judge'`))[0]!.n;
      const until = Date.now() + 30_000;
      while ((await stored()) !== '2' && Date.now() < until) await sleep(200);
      expect(await stored()).toBe('2');
    } finally {
      await recorded.stop();
      await all.ch.close();
    }
  }, 120_000);

  it('judges in the stream: a pipeline run with a judge gives a verdict for each pair of its texts sampled by id, up to the cap per round, stored in ClickHouse before the run reports done', async () => {
    const streamIso = isolated();
    const corpus = writeCorpus(tmp(), 32, 'stream.jsonl', 'stream');
    const whole = new Map(corpus.texts.map((t) => [t.id, t.text]));
    // 2 rounds of 16 texts; 2 made-up pairs a text; the cap of 3 binds in a round with 2 or more texts sampled by id.
    const perRound = 3;
    const expected = [0, 1].map((round) => Math.min(perRound, 2 * corpus.texts.slice(round * 16, round * 16 + 16).filter((t) => isSampledById(t.id)).length));
    expect(expected.every((n) => n > 0), 'both rounds have texts sampled by id').toBe(true);
    const judgeLlm = new RecordedCompletionsServer({}, undefined, () => JSON.stringify({ relevant: true, accurate: false, category: 'code' }), (p) => /### Instruction\n([^\n]*)\n/.exec(p)?.[1]);
    await judgeLlm.start();
    try {
      const s = await runOnStack(streamIso, corpus.path, { 'llm-url': synthServer.url, rounds: '2', 'judge-url': judgeLlm.url, 'judge-model': 'stream-judge', 'judge-per-round': String(perRound), 'judge-guided': 'gbnf' });
      expect(s.augmented).toBe(32);
      expect(s.judge).toEqual({ verdicts: expected[0]! + expected[1]!, judged: expected[0]! + expected[1]!, relevant: expected[0]! + expected[1]!, accurate: 0 });
      expect(s.metricRows.judgement).toBe(expected[0]! + expected[1]!);
      const ch = clickhouseClient(inject('stack').clickhouseUrl, streamIso.database);
      try {
        const rows = await queryRows<{ round: number; record_id: string; judge_model: string; judged: number; category: string }>(ch, `SELECT round, record_id, judge_model, judged, category FROM judgements FINAL WHERE run_id = '${s.runId}' ORDER BY round`);
        expect([0, 1].map((r) => rows.filter((x) => Number(x.round) === r).length)).toEqual(expected);
        for (const r of rows) expect([isSampledById(r.record_id), r.judge_model, Number(r.judged), r.category]).toEqual([true, 'stream-judge', 1, 'code']);
      } finally {
        await ch.close();
      }
      // Each prompt: a whole text from the raw topic; each request: the judge's grammar.
      expect(judgeLlm.prompts).toHaveLength(expected[0]! + expected[1]!);
      for (const p of judgeLlm.prompts) expect([...whole.values()]).toContain(/### Text\n([\s\S]*?)\n\n### Instruction/.exec(p)![1]);
      for (const e of judgeLlm.extras) expect(e.grammar).toBe(judgeGrammarGbnf());
    } finally {
      await judgeLlm.stop();
    }
  }, 180_000);

  it('gets a readable verdict for every pair from the small real model, guided by the grammar', async () => {
    const synth = await EmbeddedSynthesizer.load({ modelPath: inject('smallModel'), parallel: 2, contextSize: 2048 });
    const server = await startEmbeddedServer(synth, { modelName: 'smollm2' });
    const judge = new SynthesisPool({ endpoints: [server.url], model: 'smollm2', extraBody: { grammar: judgeGrammarGbnf() } });
    const o = options(judge, 'smollm2', 2);
    try {
      const r = await judgeRun(o);
      expect(r.sampled).toBe(4);
      expect(r.judged).toBe(4);
      expect(r.unreadable + r.failed).toBe(0);
      expect(r.relevant.n).toBe(4);
      for (const c of r.categories) expect(JUDGE_CATEGORIES).toContain(c.category);
      expect(r.categories.reduce((n, c) => n + c.pairs, 0)).toBe(4);
    } finally {
      await server.app.close();
      await synth.dispose();
      await o.ch.close();
    }
  }, 180_000);
});
