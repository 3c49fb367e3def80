import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import type { Served } from '../../ops/server/serve.ts';
import { RunMonitor } from '../../ops/jobs/run-monitor.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { inject } from 'vitest';
import { cannedServer, isolated, runOnStack, serveOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { exited, spawnIpt, testKafka } from './helpers.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { deadLetterMessage } from '../../processors/runtime/dead-letter.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';

const TOKEN = 'test-token-0123456789abcdef';
let llm: RecordedCompletionsServer;
let served: Served;
const iso = isolated();

beforeAll(async () => {
  llm = await cannedServer({ 'Paris is the capital of France.': ' Paris </END>', 'The sky is blue.': ' the sky is blue </END>' });
  served = await serveOnStack(iso, { token: TOKEN, llmUrl: llm.url, withPipeline: true, limits: { maxRecords: 100, maxTextBytes: 2000, bodyBytes: 64 * 1024 }, lagIntervalMs: 500 });
});
afterAll(async () => {
  await served?.close();
  await llm?.stop();
});

const post = (path: string, body: unknown, token: string | null = TOKEN) =>
  fetch(`${served.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('ipt serve on the real stack', () => {
  it('ingests over HTTP: bad records are rejected with reasons while the rest flow through the pipeline', async () => {
    expect((await post('/v1/runs', { runId: 'http-run' }, null)).status).toBe(401);
    expect((await post('/v1/runs', { runId: 'http-run' }, 'wrong-token-0123456789')).status).toBe(401);
    const created = await post('/v1/runs', { runId: 'http-run', preset: 'none' });
    expect(created.status).toBe(201);
    expect((await post('/v1/runs', { runId: 'http-run' })).status).toBe(409);
    expect((await post('/v1/runs/nope/texts', { records: [{ text: 'x' }] })).status).toBe(404);
    expect((await post('/v1/runs/http-run/texts', '{"records": [')).status).toBe(400);
    expect((await post('/v1/runs/http-run/texts', { records: [{ text: 'x'.repeat(70 * 1024) }] })).status).toBe(413);

    const res = await post('/v1/runs/http-run/texts', {
      records: [
        { id: 'h1', text: 'The first text about rivers and their deltas.' },
        { id: 'h2', text: 42 },
        { id: 'h3', text: 'A second text, about mountains and their glaciers.' },
        { id: 'h4', text: '   ' },
        { id: 'h5', text: 'y'.repeat(3000) },
        { id: 'h1', text: 'the same id again' },
        { id: 'h6', text: 'A third text on the weather of coastal towns.' },
      ],
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { accepted: number; ids: string[]; rejected: { index: number; id?: string; reason: string }[] };
    expect(body.accepted).toBe(3);
    expect(body.ids).toEqual(['h1', 'h3', 'h6']);
    expect(body.rejected.map((r) => r.index)).toEqual([1, 3, 4, 5]);
    expect(body.rejected[0]!.reason).toMatch(/"text" is number/);
    expect(body.rejected[1]!.reason).toMatch(/empty/);
    expect(body.rejected[2]!.reason).toMatch(/3000 bytes; at most 2000/);
    expect(body.rejected[3]!.reason).toMatch(/appears twice/);

    const ok = await post('/v1/runs/http-run/texts', { records: [{ id: 'h7', text: 'A fourth text on bridges.' }] });
    expect(ok.status).toBe(202);

    // Every accepted record comes out of the pipeline (converted, open run: one round).
    const monitor = new RunMonitor(testKafka(), new AvroSerde(inject('stack').registryUrl), pipelineTopics(iso.prefix), 'http-run');
    await monitor.start();
    try {
      const expected = new Set(['h1', 'h3', 'h6', 'h7']);
      await monitor.until(() => monitor.accounted(expected) === 4, 60_000, () => 'the ingested texts');
      expect([...monitor.convertedIds].sort()).toEqual(['h1', 'h3', 'h6', 'h7']);
    } finally {
      await monitor.stop();
    }
    const metrics = await (await fetch(`${served.url}/metrics`)).text();
    expect(metrics).toMatch(/ipt_ingest_records_total\{result="accepted"\} 4/);
    expect(metrics).toMatch(/ipt_records_in_total\{processor="[^"]+\.templating"/);
  });

  it('shows live charts of quality, F1, throughput and lag in headless Chromium, and the run as a static report', async () => {
    const CHROMIUM = inject('chromium');
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set IPT_CHROMIUM)`).toBe(true);
    const dir = tmp();
    const { path } = writeCorpus(dir, 12, 'dash.jsonl', 'dash');
    const evalFile = join(dir, 'eval.jsonl');
    writeFileSync(
      evalFile,
      [
        { id: 'e1', dataset: 'capitals', seen: true, context: 'Paris is the capital of France.', instruction: 'Capital of France?', response: 'Paris', examples: [{ context: 'Rome is in Italy.', pairs: [{ question: 'Where is Rome?', answer: 'Italy' }] }] },
        { id: 'e2', dataset: 'weather', seen: false, context: 'The sky is blue.', instruction: 'What color is the sky?', response: 'blue' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    // The stages run inside the server; this run only ingests and waits.
    const s = await runOnStack(iso, path, { 'llm-url': llm.url, rounds: '2' }, { startStages: false, evaluation: evalFile });
    expect(s.augmented).toBe(12);
    expect(s.metricRows.evaluation).toBe(3);

    // A training job's logged steps, as the built-in trainer writes them (rank 0, one row per logged step).
    const ch = clickhouseClient(inject('stack').clickhouseUrl, iso.database);
    try {
      await ch.insert({
        table: 'trainer_steps',
        format: 'JSONEachRow',
        values: [1, 2, 3, 4].map((step) => ({ run_id: s.runId, job: 'train', step, time_ms: Date.now() + step, loss: 5 - step / 2, held_out_loss: step % 2 === 0 ? 5.2 - step / 3 : null, lr: 3e-4, grad_norm: 1, tokens_per_second: 900 + step, mfu: null, ranks: 2, tokens: 64 * step })),
      });
      // The judge's verdicts, as `ipt judge` stores them: round 0 all relevant, 1 of 2 accurate; round 1 one unreadable.
      const verdict = (round: number, i: number, judged: number, relevant: number, accurate: number, category: string) => ({ id: `${s.runId}/${round}/t${i}/0/j`, run_id: s.runId, round, record_id: `t${i}`, pair_index: 0, judge_model: 'j', time_ms: Date.now(), time: Math.floor(Date.now() / 1000), judged, relevant, accurate, category, error: judged ? '' : 'no JSON object in the answer', question: 'Q?', answer: 'A.' });
      await ch.insert({ table: 'judgements', format: 'JSONEachRow', values: [verdict(0, 1, 1, 1, 1, 'code'), verdict(0, 2, 1, 1, 0, 'reading comprehension'), verdict(1, 3, 1, 0, 0, 'code'), verdict(1, 4, 0, 0, 0, '')] });
    } finally {
      await ch.close();
    }

    // Two dead letters of the templating stage, as the runtime writes them (a handler failure and a decode failure).
    const source = { topic: `${iso.prefix}.raw.texts`, partition: 0, offset: '7' };
    await produceAll(testKafka(), `${iso.prefix}.templating.dlq`, [
      deadLetterMessage(`${iso.prefix}.templating`, { key: Buffer.from(`${s.runId}/bad-1`), value: Buffer.from('x'), headers: {}, offset: '7', timestamp: String(Date.now()), attributes: 0 } as never, source, 'handler', 'Error: text bad-1 is empty'),
      deadLetterMessage(`${iso.prefix}.templating`, { key: Buffer.from(`${s.runId}/bad-2`), value: Buffer.from('y'), headers: {}, offset: '8', timestamp: String(Date.now()), attributes: 0 } as never, { ...source, offset: '8' }, 'decode', 'not Avro: no schema id'),
    ]);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      await page.goto(`${served.url}/`);
      await page.waitForFunction(() => (window as unknown as { dashboardState: { updates: number } }).dashboardState.updates >= 1, null, { timeout: 30_000 });
      // Lag is sampled every 500 ms into ClickHouse; the page refreshes every 5 s.
      await page.waitForFunction(() => (window as unknown as { dashboardState: { points: Record<string, number> } }).dashboardState.points.lag! > 0, null, { timeout: 30_000 });
      await page.waitForFunction(() => (window as unknown as { dashboardState: { points: Record<string, number> } }).dashboardState.points.deadLetters! > 0, null, { timeout: 30_000 });
      const points = await page.evaluate(() => (window as unknown as { dashboardState: { points: Record<string, number> } }).dashboardState.points);
      for (const chart of ['pairs', 'parse', 'kinds', 'f1', 'throughput', 'lag', 'histPairs', 'histAnswer', 'histGrounding', 'mixShare']) expect(points[chart], chart).toBeGreaterThan(0);
      expect([points.training, points.trainingSpeed]).toEqual([8, 4]);
      // Two rounds' relevance and accuracy; two categories.
      expect([points.judgeRates, points.judgeCategories]).toEqual([4, 2]);
      // Canvases hold drawn pixels, not blank bitmaps.
      const inked = await page.evaluate(() =>
        [...document.querySelectorAll('canvas')].map((c) => {
          const ctx = (c as HTMLCanvasElement).getContext('2d')!;
          const { data } = ctx.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height);
          let n = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
          return n;
        }),
      );
      expect(inked.every((n) => n > 500)).toBe(true);
      // By stage and reason, and the latest with their records' keys.
      expect(await page.locator('#deadReasons tr').count()).toBe(3);
      expect(await page.locator('#deadReasons').innerText()).toMatch(/templating\s+handler\s+Error: text bad-1 is empty\s+1/);
      expect(await page.locator('#deadRecent').innerText()).toContain(`${s.runId}/bad-2`);
      // The sample browser: every round's first texts are sampled, so both rounds show pairs with their context;
      // the kind filter narrows them to one kind.
      const samples = page.locator('#samples tr');
      expect(await samples.count()).toBeGreaterThan(1);
      const sampled = await page.locator('#samples').innerText();
      expect(sampled).toMatch(/\(\d+ chars\)/);
      const kinds = await page.locator('#samples td:nth-child(3)').allInnerTexts();
      const rounds = new Set(await page.locator('#samples td:nth-child(1)').allInnerTexts());
      expect([...rounds].sort()).toEqual(['0', '1']);
      const kind = kinds[0]!;
      const before = await page.evaluate(() => (window as unknown as { dashboardState: { updates: number } }).dashboardState.updates);
      await page.selectOption('#kind', kind);
      await page.waitForFunction((n) => (window as unknown as { dashboardState: { updates: number } }).dashboardState.updates > n, before, { timeout: 30_000 });
      const filtered = await page.locator('#samples td:nth-child(3)').allInnerTexts();
      expect(filtered.length).toBeGreaterThan(0);
      expect(new Set(filtered)).toEqual(new Set([kind]));
      // The LLM backend the server's stages called: up, with completions and their tokens.
      expect(await page.locator('#backends tr').count()).toBe(2);
      const backend = await page.locator('#backends tr').nth(1).innerText();
      expect(backend).toContain(llm.url.replace(/\/+$/, ''));
      expect(backend).toMatch(/\bup\b/);
      const roundRows = await page.locator('#rounds tr').count();
      expect(roundRows).toBeGreaterThanOrEqual(3);
      const shot = join(process.env.IPT_SCREENSHOT_DIR ?? dir, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(20_000);

      // The same run as a static report (ipt report): every analysis drawn, beside the paper, readable in the browser.
      const out = join(dir, 'report');
      const cli = spawnIpt(['report', '--run', s.runId, '--out', out, '--prefix', iso.prefix], { IPT_CLICKHOUSE_DB: iso.database, IPT_CLICKHOUSE_URL: inject('stack').clickhouseUrl });
      expect(await exited(cli)).toBe(0);
      const report = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
      await report.goto(pathToFileURL(join(out, 'index.html')).href);
      const images = await report.evaluate(() => [...document.images].map((i) => ({ src: i.getAttribute('src'), ok: i.complete && i.naturalWidth === 1520 && i.naturalHeight === 760 })));
      expect(images.map((i) => i.src)).toEqual(['pairs-per-text', 'pairs-by-round', 'pair-kinds', 'quality-by-round', 'judge-rates-0', 'judge-categories-0', 'response-f1'].map((f) => `charts/${f}.png`));
      expect(images.every((i) => i.ok)).toBe(true);
      const paper = await report.locator('#paper').innerText();
      expect(paper).toMatch(/pairs per converted text\s+\d+\.\d\d\s+5 \(200M pairs from 40M texts\)/);
      expect(paper).toMatch(/rounds, from scratch\s+2\s/);
      expect(await report.locator('#judge').innerText()).toMatch(/3 of 4 sampled pairs \(of 4 texts\) judged; relevant 66\.7% \[/);
      expect(await report.locator('#f1').innerText()).toMatch(/few-shot\s+seen\s+1\s/);
      // The run mixed domain texts only (general weight 0): the table says so, with no empty chart.
      expect(await report.locator('#mix').innerText()).toMatch(/Only domain texts were mixed[\s\S]*target general share\s+0\.0%/);
      const reportShot = join(process.env.IPT_SCREENSHOT_DIR ?? dir, 'report.png');
      await report.screenshot({ path: reportShot, fullPage: true });
      expect(statSync(reportShot).size).toBeGreaterThan(50_000);
    } finally {
      await browser.close();
    }
  });
});
