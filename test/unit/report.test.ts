import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RoundAggregate } from '../../connectors/clickhouse/run-queries.ts';
import { writeReport } from '../../ops/jobs/report.ts';
import { reportCharts } from '../../ops/report/report-charts.ts';
import type { ReportData } from '../../ops/report/report-data.ts';
import { escapeHtml, reportHtml } from '../../ops/report/report-html.ts';
import { comparisons, f1Cells, judgeSummaries, pairsPerText, realisedGeneralShare } from '../../ops/report/report-model.ts';
import { renderChartPng } from '../../ops/report/render-chart.ts';
import { PAPER_FIGURES } from '../../processors/evaluation/paper-figures.ts';

const round = (r: number, texts: number, pairs: number): RoundAggregate => ({
  run_id: 'run-<1>', round: r, texts, failed: 1, skipped: 0, few_shot_texts: r === 0 ? 0 : texts, pairs_total: pairs, pairs_per_text: pairs / texts,
  parse_success: 0.9, free_form: pairs - 3, mc: 2, cot: 1, mc_cot: 0, duplicate_rate: 0.05, grounding_avg: 0.8, latency_ms_avg: 100,
  prompt_tokens_total: 1000, completion_tokens_total: 500, truncated_texts: 0, truncation_rate: 0,
});

const FULL: ReportData = {
  runId: 'run-<1>',
  generatedAt: '2026-11-30T12:00:00.000Z',
  run: { preset: 'from-scratch', rounds: 2, ingested: 100, convertedTexts: 20, convertFraction: 0.2, generalWeight: 0.05, model: 'synth', maxNewTokens: 400, seed: 7, createdAt: 0 },
  rounds: [round(0, 10, 40), round(1, 10, 60)],
  histograms: [
    { metric: 'pairs', round: 0, bin: 3, texts: 4 },
    { metric: 'pairs', round: 0, bin: 5, texts: 6 },
    { metric: 'pairs', round: 1, bin: 6, texts: 10 },
    { metric: 'grounding', round: 0, bin: 0.8, texts: 10 },
  ],
  f1: [
    { dataset: 'a', shots: 0, seen: 1, records: 3, f1: 0.5, exact_match: 0 },
    { dataset: 'b', shots: 0, seen: 1, records: 1, f1: 0.9, exact_match: 1 },
    { dataset: 'a', shots: 2, seen: 1, records: 4, f1: 0.7, exact_match: 0.25 },
    { dataset: 'c', shots: 0, seen: 0, records: 2, f1: 0.2, exact_match: 0 },
  ],
  judges: [{ model: 'judge-m', rounds: [{ run_id: 'run-<1>', round: 0, judge_model: 'judge-m', pairs: 10, texts: 5, judged: 9, relevant: 9, accurate: 6 }, { run_id: 'run-<1>', round: 1, judge_model: 'judge-m', pairs: 5, texts: 3, judged: 5, relevant: 4, accurate: 2 }], categories: [{ category: 'code', pairs: 10 }, { category: 'other', pairs: 4 }] }],
  mix: { final: { domainTokens: 950, generalTokens: 50, mixIndex: 120 }, over: [] },
};

const EMPTY: ReportData = { runId: 'r', generatedAt: '2026-11-30T12:00:00.000Z', rounds: [], histograms: [], f1: [], judges: [], mix: { over: [] } };

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the run report (ipt report)', () => {
  it('puts the run beside the paper, quantity by quantity', () => {
    expect(pairsPerText(FULL)).toBe(5);
    expect(realisedGeneralShare(FULL)).toBeCloseTo(0.05, 12);
    const c = new Map(comparisons(FULL).map((x) => [x.quantity, x]));
    expect(c.get(PAPER_FIGURES.pairsPerText.quantity)).toMatchObject({ run: '5.00', paper: PAPER_FIGURES.pairsPerText.shown });
    expect(c.get(PAPER_FIGURES.roundsFromScratch.quantity)?.run).toBe('2');
    expect(c.get(PAPER_FIGURES.convertedFromScratch.quantity)?.run).toBe('20.0% (20 of 100)');
    expect(c.get(PAPER_FIGURES.taskCategories.quantity)?.run).toBe("2 of the judge's families");
    expect(c.get(PAPER_FIGURES.judgeSample.quantity)?.run).toBe('14 pairs of 8 texts (judge-m)');
    expect(c.get(PAPER_FIGURES.judgeRates.quantity)?.paper).toBe(PAPER_FIGURES.judgeRates.shown);
    // Nothing recorded: every figure of the run is a dash, the paper's are still there.
    for (const x of comparisons(EMPTY)) expect(x.run).toBe('—');
  });

  it('averages F1 over records per zero-/few-shot × seen/unseen cell, and judges with Wilson intervals', () => {
    expect(f1Cells(FULL)).toEqual([
      { shots: 'zero-shot', seen: 'seen', records: 4, f1: (3 * 0.5 + 0.9) / 4, exactMatch: 0.25 },
      { shots: 'zero-shot', seen: 'unseen', records: 2, f1: 0.2, exactMatch: 0 },
      { shots: 'few-shot', seen: 'seen', records: 4, f1: 0.7, exactMatch: 0.25 },
    ]);
    const [j] = judgeSummaries(FULL);
    expect(j).toMatchObject({ pairs: 15, judged: 14, relevant: { successes: 13, n: 14 }, accurate: { successes: 8, n: 14 } });
    expect(j!.relevant.low).toBeGreaterThan(0.6);
    expect(j!.relevant.high).toBeLessThan(1);
    expect(j!.categories.map((x) => x.share)).toEqual([10 / 14, 4 / 14]);
  });

  it('draws a chart for each analysis with data and none for those without', () => {
    expect(reportCharts(FULL).map((c) => c.file)).toEqual(['pairs-per-text.png', 'pairs-by-round.png', 'pair-kinds.png', 'quality-by-round.png', 'judge-rates-0.png', 'judge-categories-0.png', 'response-f1.png', 'mix-share.png']);
    expect(reportCharts(EMPTY)).toEqual([]);
    // Domain texts only, as asked (general weight 0): no empty chart, and the page says why.
    const domainOnly: ReportData = { ...FULL, run: { ...FULL.run!, generalWeight: 0 }, mix: { final: { domainTokens: 900, generalTokens: 0, mixIndex: 10 }, over: [] } };
    expect(reportCharts(domainOnly).map((c) => c.file)).not.toContain('mix-share.png');
    expect(reportHtml(domainOnly, reportCharts(domainOnly))).toContain('Only domain texts were mixed');
    const byRound = reportCharts(FULL).find((c) => c.file === 'pairs-by-round.png')!;
    expect(byRound.config.data.datasets[1]!.data).toEqual([5, 5]); // the paper's line
    // Two judges, the first with no category (every answer unreadable): each chart under its own judge.
    const failing = { model: 'stream', rounds: [{ run_id: 'run-<1>', round: 0, judge_model: 'stream', pairs: 2, texts: 1, judged: 0, relevant: 0, accurate: 0 }], categories: [] };
    const two: ReportData = { ...FULL, judges: [failing, FULL.judges[0]!] };
    expect(reportCharts(two).map((c) => c.file).filter((f) => f.startsWith('judge-'))).toEqual(['judge-rates-0.png', 'judge-rates-1.png', 'judge-categories-1.png']);
    const twoHtml = reportHtml(two, reportCharts(two));
    expect(twoHtml.indexOf('judge-categories-1.png')).toBeGreaterThan(twoHtml.indexOf('<h3>judge-m</h3>'));
    // A value ClickHouse could not give prints as a dash, not NaN or a crash.
    const odd: ReportData = { ...FULL, rounds: [{ ...FULL.rounds[0]!, pairs_per_text: null as unknown as number, grounding_avg: Number.NaN }] };
    const oddHtml = reportHtml(odd, reportCharts(odd));
    expect(oddHtml).not.toMatch(/NaN/);
    expect(oddHtml).toContain('<td>—</td>');
    const histogram = reportCharts(FULL)[0]!;
    expect(histogram.config.data.datasets.map((d) => d.data)).toEqual([[0, 0, 0, 4, 0, 6, 0], [0, 0, 0, 0, 0, 0, 10]]);
  });

  it('writes an escaped page whose every image is a chart it drew, and says where data is missing', () => {
    const html = reportHtml(FULL, reportCharts(FULL));
    expect(html).toContain('run run-&lt;1&gt;');
    expect(html).not.toContain('run-<1>');
    const images = [...html.matchAll(/<img src="charts\/([^"]+)"/g)].map((m) => m[1]);
    expect(images.sort()).toEqual(reportCharts(FULL).map((c) => c.file).sort());
    expect(html).toContain(escapeHtml(PAPER_FIGURES.pairsPerText.shown));
    const empty = reportHtml(EMPTY, []);
    expect(empty).not.toContain('<img');
    expect(empty).toContain('No judgements for this run: `ipt judge --run r');
    expect(empty).toContain('No evaluation records for this run');
    expect(empty).toContain('No synthesis metrics for this run');
  });

  it('renders PNGs without a browser and writes the page, its charts and its data', async () => {
    const png = await renderChartPng(reportCharts(FULL)[4]!.config);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1520, 760]);
    const dir = mkdtempSync(join(tmpdir(), 'ipt-report-'));
    dirs.push(dir);
    const w = await writeReport(FULL, dir);
    expect(w).toMatchObject({ charts: 8, missing: [] });
    for (const f of w.files) expect(existsSync(join(dir, f)), f).toBe(true);
    const data = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { runId: string; comparisons: unknown[] };
    expect(data.runId).toBe('run-<1>');
    expect(data.comparisons).toHaveLength(comparisons(FULL).length);
    expect((await writeReport(EMPTY, join(dir, 'empty'))).missing).toEqual(['synthesis metrics', 'judgements', 'evaluation', 'mix']);
  });

  it("quotes only the paper's figures that docs/method.md §8 states", () => {
    const docs = readFileSync(new URL('../../docs/method.md', import.meta.url), 'utf8');
    const s8 = docs.slice(docs.indexOf('## §8'));
    for (const f of Object.values(PAPER_FIGURES)) expect(s8, f.quantity).toContain(`| ${f.quantity} | ${f.shown} | ${f.source} |`);
  });
});
