import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { formatSynthesizerInput } from '../../processors/templating/synthesizer-format.ts';
import { runAugment } from '../../ops/jobs/augment.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { AugmentedTextRecord, MixedTextRecord } from '../../processors/pipeline/records.ts';
import { pipelineTopics, stageGroup } from '../../processors/pipeline/pipeline-topics.ts';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { testKafka } from './helpers.ts';

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
});

async function readRecords<T>(topic: string, schema: string, count?: number): Promise<T[]> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  const r = await readTopic(testKafka(), topic, { count, timeoutMs: count === undefined ? 3000 : 30_000, settleMs: 500 });
  await serde.prefetch(r.messages.map((m) => m.value));
  return r.messages.map((m) => serde.decode(m.value, loadSchema(schema)) as T);
}

describe('the pipeline on the real stack', () => {
  it('accounts for every text of a 3-round run, matches ClickHouse rows, and gives the same texts as the batch job', async () => {
    const iso = isolated();
    const dir = tmp();
    // 31 texts in 3 rounds: B = 11, the last round has 9, so two round-1 collections are carried to the output.
    const { path, texts } = writeCorpus(dir, 31);
    const mixedOut = join(dir, 'mixed.jsonl');
    const s = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '3', seed: '7' }, { output: mixedOut });
    expect(s.ingested).toBe(31);
    expect(s.augmented + s.raw + s.deadLettered).toBe(31);
    expect(s.augmented).toBe(31);
    expect(s.metricRows.synthesis).toBe(31);
    expect(s.perRound.map((r) => r.texts)).toEqual([11, 11, 9]);
    expect(s.perRound.map((r) => r.fewShot)).toEqual([0, 11, 9]);
    expect(s.perRound.reduce((n, r) => n + r.pairs, 0)).toBe(s.pairs);
    expect(s.mixed.augmented).toBe(s.outputTexts);
    // The file sink: the mixed stream in mix order.
    const lines = readFileSync(mixedOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mixIndex: number; source: string; text: string });
    expect(s.output).toEqual({ path: mixedOut, records: s.mixed.records });
    expect(lines.map((l) => l.mixIndex)).toEqual(lines.map((_, i) => i));

    // ClickHouse holds one row per text, each once.
    const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
    const rows = await queryRows<{ record_id: string }>(ch, `SELECT record_id FROM synthesis_metrics FINAL WHERE run_id = '${s.runId}'`);
    await ch.close();
    expect(rows.map((r) => r.record_id).sort()).toEqual(texts.map((t) => t.id).sort());

    // The streaming form and the batch form give the same pre-training texts for the same seed.
    const out = join(dir, 'batch.jsonl');
    await runAugment({ input: path, output: out, rounds: 3, llmUrl: server.url, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0, seed: 7, concurrency: 8, retries: 1, timeoutMs: 10_000, progress: false, log: () => undefined });
    const batch = readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    const streamed = await readRecords<AugmentedTextRecord>(pipelineTopics(iso.prefix).augmented, 'augmented-text');
    expect(streamed.map((a) => a.text).sort()).toEqual(batch.sort());
  });

  it('prompts each text of a single-round run with exactly formatSynthesizerInput(text)', async () => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 12, 'one.jsonl', 'single');
    const before = server.prompts.length;
    const s = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '1' });
    expect(s.augmented).toBe(12);
    expect(server.prompts.slice(before).sort()).toEqual(texts.map((t) => formatSynthesizerInput(t.text)).sort());
  });

  it.each(['staged', 'fused'] as const)('runs the from-scratch preset: a fifth converted in 2 rounds, the rest raw, general instructions mixed by token share (%s)', async (topology) => {
    const iso = isolated();
    const dir = tmp();
    const { path } = writeCorpus(dir, 40, 'scratch.jsonl', 'fs');
    const general = writeCorpus(dir, 30, 'general.jsonl', 'gen');
    const parquet = join(dir, 'mixed.parquet');
    const s = await runOnStack(iso, path, { 'llm-url': server.url, preset: 'from-scratch', 'general-weight': '0.2', topology }, { general: general.path, output: parquet });
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(parquet) });
    expect(rows).toHaveLength(s.mixed.records);
    expect(rows.filter((r) => r.source === 'general')).toHaveLength(s.mixed.general);
    expect(s.rounds).toBe(2);
    expect(s.augmented).toBe(8);
    expect(s.raw).toBe(32);
    expect(s.mixed.raw).toBe(32);
    expect(s.mixed.augmented).toBe(s.outputTexts);
    expect(s.mixed.general).toBeGreaterThan(0);
    // Within one general record of the target at the end of the stream (the sampler's bound holds at every prefix).
    const mixed = await readRecords<MixedTextRecord>(pipelineTopics(iso.prefix).mixed, 'mixed-text');
    mixed.sort((a, b) => a.mixIndex - b.mixIndex);
    expect(mixed.map((m) => m.mixIndex)).toEqual(mixed.map((_, i) => i));
    let domain = 0;
    let gen = 0;
    const maxGeneral = Math.max(...mixed.filter((m) => m.source === 'general').map((m) => m.tokens));
    for (const m of mixed) {
      if (m.source === 'general') gen += m.tokens;
      else domain += m.tokens;
      expect(gen - 0.2 * (gen + domain)).toBeLessThanOrEqual(maxGeneral);
    }
    expect(Math.abs(s.mixed.generalShare - 0.2)).toBeLessThan(0.1);
  });

  it.each(['staged', 'fused'] as const)('dead-letters a text whose synthesis fails for good, with the reason, and the rest of its collection goes on (%s)', async (topology) => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 10, 'fail.jsonl', 'fail');
    const failing = texts[2]!;
    const failingServer = await cannedServer();
    failingServer.permanentFailures.add(failing.text);
    try {
      const s = await runOnStack(iso, path, { 'llm-url': failingServer.url, rounds: '2', retries: '1', topology });
      expect(s.deadLettered).toBe(1);
      expect(s.deadLetters[0]).toMatchObject({ id: failing.id, stage: stageGroup(pipelineTopics(iso.prefix), topology === 'fused' ? 'fused' : 'synthesis') });
      expect(s.deadLetters[0]!.reason).toMatch(/synthesis failed/);
      expect(s.augmented).toBe(9);
      expect(s.perRound[0]!.failed).toBe(1);
      // Its round-1 successor (position 2) starts afresh: zero-shot.
      expect(s.perRound[1]!.fewShot).toBe(4);
    } finally {
      await failingServer.stop();
    }
  });

  it.each(['staged', 'fused'] as const)('stores each synthesis’s finish reason, and counts the outputs cut at max-new-tokens per round (%s)', async (topology) => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 10, 'cut.jsonl', 'cut');
    const cutting = await cannedServer();
    // Two texts of round 0 and one of round 1 are answered as cut at max_tokens.
    for (const i of [0, 3, 7]) cutting.finishReasons.set(texts[i]!.text, 'length');
    try {
      const s = await runOnStack(iso, path, { 'llm-url': cutting.url, rounds: '2', topology });
      expect(s.perRound.map((r) => r.truncated)).toEqual([2, 1]);
      const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
      try {
        const rows = await queryRows<{ record_id: string; finish_reason: string; truncated: number }>(ch, `SELECT record_id, finish_reason, truncated FROM synthesis_metrics FINAL WHERE run_id = '${s.runId}' ORDER BY record_id`);
        expect(rows).toHaveLength(10);
        expect(rows.filter((r) => Number(r.truncated) === 1).map((r) => r.record_id).sort()).toEqual([texts[0]!.id, texts[3]!.id, texts[7]!.id].sort());
        expect(new Set(rows.map((r) => r.finish_reason))).toEqual(new Set(['stop', 'length']));
        const [agg] = await queryRows<{ truncation_rate: number }>(ch, `SELECT truncation_rate FROM round_aggregates WHERE run_id = '${s.runId}' AND round = 0`);
        expect(Number(agg!.truncation_rate)).toBeCloseTo(2 / 5, 5);
      } finally {
        await ch.close();
      }
    } finally {
      await cutting.stop();
    }
  });

  it('scores F1 per dataset, shots and seen/unseen into ClickHouse', async () => {
    const iso = isolated();
    const dir = tmp();
    const { path } = writeCorpus(dir, 4, 'eval-corpus.jsonl', 'ev');
    const evalFile = join(dir, 'eval.jsonl');
    const records = [
      { id: 'e1', dataset: 'capitals', seen: true, context: 'Paris is the capital of France.', instruction: 'What is the capital of France?', response: 'Paris', examples: [{ context: 'Rome is the capital of Italy.', pairs: [{ question: 'Capital of Italy?', answer: 'Rome' }] }] },
      { id: 'e2', dataset: 'capitals', seen: true, context: 'Berlin is the capital of Germany.', instruction: 'What is the capital of Germany?', response: 'Berlin', examples: [] },
      { id: 'e3', dataset: 'colors', seen: false, context: 'The sky is blue.', instruction: 'What color is the sky?', responses: ['blue', 'light blue'] },
    ];
    writeFileSync(evalFile, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const evalServer = await cannedServer({
      'Paris is the capital of France.': ' Paris </END>',
      'Berlin is the capital of Germany.': ' the city of Berlin </END>',
      'The sky is blue.': ' green </END>',
    });
    try {
      const s = await runOnStack(iso, path, { 'llm-url': evalServer.url, rounds: '1' }, { evaluation: evalFile });
      expect(s.metricRows.evaluation).toBe(4);
      const byKey = Object.fromEntries(s.evaluation.map((e) => [`${e.dataset}/${e.shots}/${e.seen}`, e]));
      // e1 zero-shot: "Paris" → 1; e2: "the city of Berlin" vs "Berlin" → P = 1/3, R = 1 → 0.5; so capitals/0 averages 0.75.
      expect(byKey['capitals/0/1']!.f1).toBe(0.75);
      expect(byKey['capitals/1/1']!.f1).toBe(1);
      expect(byKey['colors/0/0']!.f1).toBe(0);
    } finally {
      await evalServer.stop();
    }
  });
});
