import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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
// every text is sampled (each round's first 8, and the rest by id when they fall in the sixteenth).
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
  it('judges a uniform sample per round against the whole texts, stores the verdicts once, and reports rates with intervals (recorded-response judge: the protocol)', async () => {
    // Keyed on the pair's instruction: "opens" is judged accurate, "closes" not; one text's pairs get an answer outside the grammar.
    const instruction = (prompt: string) => /### Instruction\n([^\n]*)\n/.exec(prompt)?.[1];
    const recorded = new RecordedCompletionsServer({ unreadable: '{"relevant": true, "accurate": true, "category": "poetry"}' }, undefined, (q) => JSON.stringify({ relevant: true, accurate: q.includes('opens'), category: 'reading comprehension' }), (p) => {
      const q = instruction(p);
      return q !== undefined && p.includes('### Text\nDocument 3.') ? 'unreadable' : q;
    });
    await recorded.start();
    const judge = new SynthesisPool({ endpoints: [recorded.url], model: 'recorded-judge', extraBody: { grammar: judgeGrammarGbnf() } });
    const o = options(judge, 'recorded-judge', 5);
    try {
      const r = await judgeRun(o);
      expect(r.rounds.map((x) => x.round)).toEqual([0, 1]);
      for (const x of r.rounds) {
        expect(x.candidates).toBeGreaterThan(5);
        expect(x.sampled).toBe(5);
      }
      expect(r.sampled).toBe(10);
      expect(r.failed).toBe(0);
      expect(r.judged + r.unreadable).toBe(10);
      for (const p of r.problems) expect(p).toMatch(/"category" "poetry" is not one of the categories/);
      expect(r.relevant).toMatchObject({ successes: r.judged, n: r.judged, rate: 1 });
      expect(r.relevant.low).toBeLessThan(1);
      const opens = recorded.prompts.filter((p) => /### Instruction\n[^\n]*opens/.test(p) && !p.includes('### Text\nDocument 3.')).length;
      expect(r.accurate.successes).toBe(opens);
      expect(r.categories).toEqual(r.judged > 0 ? [{ category: 'reading comprehension', pairs: r.judged, share: 1 }] : []);
      expect(r.contextFromSample).toBe(0);
      // Each prompt carries its pair's whole text, from the raw topic; each request the judge's grammar.
      expect(recorded.prompts).toHaveLength(10);
      for (const p of recorded.prompts) {
        const text = /### Text\n([\s\S]*?)\n\n### Instruction/.exec(p)![1]!;
        expect([...texts.values()]).toContain(text);
      }
      for (const e of recorded.extras) expect(e.grammar).toBe(judgeGrammarGbnf());

      // Stored once per pair and judge: judging again replaces the rows.
      await judgeRun(o);
      const rows = await queryRows<{ n: string; judged: string; accurate: string }>(o.ch, `SELECT count() AS n, sum(judged) AS judged, sum(accurate) AS accurate FROM judgements FINAL WHERE run_id = '${runId}'`);
      expect(rows[0]).toEqual({ n: '10', judged: String(r.judged), accurate: String(r.accurate.successes) });
    } finally {
      await recorded.stop();
      await o.ch.close();
    }
  }, 120_000);

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
