import type { ReportChart } from './report-charts.ts';
import type { ReportData } from './report-data.ts';
import { comparisons, f1Cells, judgeSummaries, pct, rateText, realisedGeneralShare } from './report-model.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const num = (x: number, digits = 3) => (!Number.isFinite(x) ? '—' : Number.isInteger(x) ? String(x) : x.toFixed(digits));

function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined) => `<td>${escapeHtml(typeof v === 'number' ? num(v) : (v ?? '—'))}</td>`;
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

const note = (text: string) => `<p class="note">${escapeHtml(text)}</p>`;

function figure(charts: ReportChart[], file: string, alt: string): string {
  if (!charts.some((c) => c.file === file)) return '';
  return `<figure><img src="charts/${escapeHtml(file)}" alt="${escapeHtml(alt)}" width="760" height="380"></figure>`;
}

function synthesisSections(d: ReportData, charts: ReportChart[]): string {
  if (d.rounds.length === 0) return `<section id="synthesis"><h2>Synthesis</h2>${note('No synthesis metrics for this run in ClickHouse.')}</section>`;
  const rows = d.rounds.map((r) => [r.round, r.texts, r.failed, r.skipped, r.few_shot_texts, r.pairs_total, r.pairs_per_text, pct(r.parse_success), pct(r.duplicate_rate), pct(r.grounding_avg), r.truncated_texts]);
  const kinds = d.rounds.map((r) => [r.round, r.free_form, r.mc, r.cot, r.mc_cot]);
  return [
    `<section id="pairs"><h2>Pairs per text</h2>`,
    figure(charts, 'pairs-per-text.png', 'Histogram of pairs per text by round'),
    figure(charts, 'pairs-by-round.png', 'Mean pairs per text by round beside the paper'),
    `</section>`,
    `<section id="kinds"><h2>Pair kinds</h2>`,
    figure(charts, 'pair-kinds.png', 'Share of pair kinds by round'),
    table(['round', 'free-form', 'multiple choice', 'chain of thought', 'MC + CoT'], kinds),
    `</section>`,
    `<section id="quality"><h2>Parse success and grounding by round</h2>`,
    figure(charts, 'quality-by-round.png', 'Parse success, grounding and duplicate rate by round'),
    table(['round', 'texts', 'failed', 'skipped', 'few-shot', 'pairs', 'pairs / text', 'parse success', 'duplicates', 'grounding', 'cut at max tokens'], rows),
    `</section>`,
  ].join('\n');
}

function judgeSection(d: ReportData, charts: ReportChart[]): string {
  const judges = judgeSummaries(d);
  if (judges.length === 0) return `<section id="judge"><h2>The LLM judge</h2>${note(`No judgements for this run: \`ipt judge --run ${d.runId} --judge-url URL --judge-model NAME\` adds them, and so does a pipeline given \`--judge-url\` as it runs (docs/method.md §7.4).`)}</section>`;
  const parts = judges.map((j, i) => {
    const rounds = j.rounds.map((r) => [r.round, r.judged, rateText(r.relevant), rateText(r.accurate)]);
    return [
      `<h3>${escapeHtml(j.model)}</h3>`,
      `<p>${j.judged} of ${j.pairs} sampled pairs (of ${j.texts} texts) judged; relevant ${escapeHtml(rateText(j.relevant))}, accurate ${escapeHtml(rateText(j.accurate))} (95% Wilson intervals).</p>`,
      figure(charts, `judge-rates-${i}.png`, `Relevant and accurate rates by round, judge ${j.model}`),
      table(['round', 'judged', 'relevant', 'accurate'], rounds),
      figure(charts, `judge-categories-${i}.png`, `Task categories, judge ${j.model}`),
      table(['category', 'pairs', 'share'], j.categories.map((c) => [c.category, c.pairs, pct(c.share)])),
    ].join('\n');
  });
  return `<section id="judge"><h2>The LLM judge</h2>\n${parts.join('\n')}</section>`;
}

function f1Section(d: ReportData, charts: ReportChart[]): string {
  const cells = f1Cells(d);
  if (cells.length === 0) return `<section id="f1"><h2>Response F1</h2>${note('No evaluation records for this run: a run given `--evaluation FILE` scores the synthesizer’s responses (docs/method.md §7.1).')}</section>`;
  return [
    `<section id="f1"><h2>Response F1</h2>`,
    figure(charts, 'response-f1.png', 'Response F1, zero- and few-shot, on seen and unseen datasets'),
    table(['prompt', 'datasets', 'records', 'F1', 'exact match'], cells.map((c) => [c.shots, c.seen, c.records, c.f1, c.exactMatch])),
    table(['dataset', 'shots', 'seen', 'records', 'F1', 'exact match'], d.f1.map((r) => [r.dataset, r.shots, r.seen ? 'yes' : 'no', r.records, r.f1, r.exact_match])),
    `</section>`,
  ].join('\n');
}

function mixSection(d: ReportData, charts: ReportChart[]): string {
  const realised = realisedGeneralShare(d);
  const f = d.mix.final;
  if (!f && d.mix.over.length === 0) return `<section id="mix"><h2>The mix</h2>${note('No mixer state for this run (its changelog was not read, or the run mixed nothing).')}</section>`;
  const rows: (string | number)[][] = [];
  if (d.run) rows.push(['target general share', pct(d.run.generalWeight)]);
  if (realised !== undefined) rows.push(['realised general share', pct(realised)]);
  if (f) rows.push(['domain tokens', f.domainTokens], ['general tokens', f.generalTokens], ['records mixed', f.mixIndex]);
  const domainOnly = !charts.some((c) => c.file === 'mix-share.png') ? note('Only domain texts were mixed: the run asked for no general instructions (general weight 0).') : '';
  return [`<section id="mix"><h2>The mix</h2>`, figure(charts, 'mix-share.png', 'General instructions’ share of the mixed tokens'), domainOnly, table(['', 'value'], rows), `</section>`].join('\n');
}

const STYLE = `body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2rem auto;max-width:64rem;color:#222;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #eee}.note{color:#555;font-style:italic}
.meta{color:#555}`;

/** The report as one static HTML page: the comparison with the paper, then each analysis with its chart and numbers. */
export function reportHtml(d: ReportData, charts: ReportChart[]): string {
  const r = d.run;
  const meta = r
    ? `preset ${r.preset}, ${r.rounds} round${r.rounds === 1 ? '' : 's'}, ${r.ingested} texts ingested, synthesizer ${r.model}, seed ${r.seed}`
    : 'the run’s settings were not read (no Kafka, or the runs topic no longer holds it)';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>instruct-pt report: ${escapeHtml(d.runId)}</title><style>${STYLE}</style></head>
<body>
<h1>instruct-pt report: run ${escapeHtml(d.runId)}</h1>
<p class="meta">${escapeHtml(meta)}. Written ${escapeHtml(d.generatedAt)}.</p>
<section id="paper"><h2>Beside the paper</h2>
${table(['quantity', 'this run', 'the paper', 'docs/method.md'], comparisons(d).map((c) => [c.quantity, c.run, c.paper, c.source]))}
</section>
${synthesisSections(d, charts)}
${judgeSection(d, charts)}
${f1Section(d, charts)}
${mixSection(d, charts)}
</body></html>
`;
}
