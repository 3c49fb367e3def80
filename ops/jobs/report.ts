import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { reportCharts } from '../report/report-charts.ts';
import { loadReportData, type ReportData, type ReportSources } from '../report/report-data.ts';
import { reportHtml } from '../report/report-html.ts';
import { comparisons } from '../report/report-model.ts';
import { renderChartPng } from '../report/render-chart.ts';

export interface WrittenReport {
  runId: string;
  dir: string;
  /** index.html, report.json and each chart, relative to dir. */
  files: string[];
  charts: number;
  /** Sections left without data, as the page says. */
  missing: string[];
}

/**
 * Writes a run's report to `dir`: index.html (the analyses beside the paper's figures, docs/method.md §8), a PNG per
 * chart under charts/, and report.json (the data the page was drawn from).
 */
export async function writeReport(d: ReportData, dir: string): Promise<WrittenReport> {
  const charts = reportCharts(d);
  await mkdir(join(dir, 'charts'), { recursive: true });
  const files: string[] = [];
  for (const c of charts) {
    await writeFile(join(dir, 'charts', c.file), await renderChartPng(c.config));
    files.push(`charts/${c.file}`);
  }
  await writeFile(join(dir, 'index.html'), reportHtml(d, charts));
  await writeFile(join(dir, 'report.json'), `${JSON.stringify({ ...d, comparisons: comparisons(d) }, null, 2)}\n`);
  files.unshift('index.html', 'report.json');
  const missing = [
    d.rounds.length === 0 ? 'synthesis metrics' : '',
    d.judges.length === 0 ? 'judgements' : '',
    d.f1.length === 0 ? 'evaluation' : '',
    !d.mix.final && d.mix.over.length === 0 ? 'mix' : '',
  ].filter(Boolean);
  return { runId: d.runId, dir, files, charts: charts.length, missing };
}

/** Reads a run's data and writes its report. */
export async function reportRun(s: ReportSources, dir: string): Promise<WrittenReport> {
  return writeReport(await loadReportData(s), dir);
}
