import type { ChartConfiguration, Plugin } from 'chart.js';
import { PAPER_FIGURES } from '../../processors/evaluation/paper-figures.ts';
import type { Rate } from '../../processors/evaluation/judge.ts';
import type { ReportData } from './report-data.ts';
import { f1Cells, judgeSummaries, realisedGeneralShare } from './report-model.ts';

/** One chart of the report: the PNG's file name and its Chart.js configuration (rendered without a browser). */
export interface ReportChart {
  file: string;
  config: ChartConfiguration;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const colour = (i: number) => PALETTE[i % PALETTE.length]!;

const base = (title: string, extra: Record<string, unknown> = {}, legend = true) => ({
  responsive: false,
  animation: false as const,
  plugins: { title: { display: true, text: title, font: { size: 15 } }, legend: legend ? { position: 'bottom' as const } : { display: false } },
  ...extra,
});

/** Whiskers for 95% intervals over a bar chart's bars: intervals[dataset][bar], drawn after the bars. */
function whiskers(intervals: (Rate | undefined)[][]): Plugin {
  return {
    id: 'whiskers',
    afterDatasetsDraw(chart) {
      const { ctx } = chart;
      const y = chart.scales.y!;
      ctx.save();
      ctx.strokeStyle = '#222';
      ctx.lineWidth = 1.5;
      intervals.forEach((bars, di) => {
        const meta = chart.getDatasetMeta(di);
        bars.forEach((r, bi) => {
          const el = meta.data[bi];
          if (!r || r.n === 0 || !el) return;
          const x = el.x;
          const top = y.getPixelForValue(r.high);
          const bottom = y.getPixelForValue(r.low);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, bottom);
          ctx.moveTo(x - 5, top);
          ctx.lineTo(x + 5, top);
          ctx.moveTo(x - 5, bottom);
          ctx.lineTo(x + 5, bottom);
          ctx.stroke();
        });
      });
      ctx.restore();
    },
  };
}

const roundLabels = (d: ReportData) => d.rounds.map((r) => `round ${r.round}`);
const shareScale = { min: 0, max: 1, ticks: { callback: (v: number | string) => `${Math.round(Number(v) * 100)}%` } };
const shareAxis = { y: shareScale };

/** The pairs-per-text distribution, one bar series per round. */
function pairsHistogram(d: ReportData): ReportChart | undefined {
  const bins = d.histograms.filter((h) => h.metric === 'pairs');
  if (bins.length === 0) return undefined;
  const rounds = [...new Set(bins.map((b) => b.round))].sort((a, b) => a - b);
  const top = Math.max(...bins.map((b) => b.bin));
  const labels = Array.from({ length: top + 1 }, (_, i) => (i === 20 ? '20+' : String(i)));
  return {
    file: 'pairs-per-text.png',
    config: {
      type: 'bar',
      data: { labels, datasets: rounds.map((round, i) => ({ label: `round ${round}`, backgroundColor: colour(i), data: labels.map((_, bin) => bins.find((b) => b.round === round && b.bin === bin)?.texts ?? 0) })) },
      options: base('Pairs per text (texts with that many pairs)', { scales: { x: { title: { display: true, text: 'pairs' } }, y: { title: { display: true, text: 'texts' } } } }),
    },
  };
}

/** Mean pairs per text by round, against the paper's 5. */
function pairsByRound(d: ReportData): ReportChart | undefined {
  if (d.rounds.length === 0) return undefined;
  const paper = PAPER_FIGURES.pairsPerText.value;
  return {
    file: 'pairs-by-round.png',
    config: {
      type: 'bar',
      data: {
        labels: roundLabels(d),
        datasets: [
          { type: 'bar', label: 'this run', backgroundColor: colour(0), data: d.rounds.map((r) => r.pairs_per_text) },
          { type: 'line', label: `the paper (${paper})`, borderColor: '#222', borderDash: [6, 4], pointRadius: 0, data: d.rounds.map(() => paper) },
        ],
      },
      options: base('Mean pairs per text by round, and the paper’s', { scales: { y: { min: 0, suggestedMax: paper + 1 } } }),
    },
  };
}

/** The pair kinds' shares by round (free-form, multiple choice, chain of thought, both). */
function pairKinds(d: ReportData): ReportChart | undefined {
  if (d.rounds.every((r) => r.pairs_total === 0)) return undefined;
  const kinds = [
    ['free-form', 'free_form'],
    ['multiple choice', 'mc'],
    ['chain of thought', 'cot'],
    ['MC + CoT', 'mc_cot'],
  ] as const;
  const total = (r: ReportData['rounds'][number]) => kinds.reduce((a, [, k]) => a + r[k], 0) || 1;
  return {
    file: 'pair-kinds.png',
    config: {
      type: 'bar',
      data: { labels: roundLabels(d), datasets: kinds.map(([label, k], i) => ({ label, backgroundColor: colour(i), data: d.rounds.map((r) => r[k] / total(r)) })) },
      options: base('Pair kinds by round (share of pairs)', { scales: { x: { stacked: true }, y: { ...shareAxis.y, stacked: true } } }),
    },
  };
}

/** Parse success, grounding and the duplicate rate by round. */
function qualityByRound(d: ReportData): ReportChart | undefined {
  if (d.rounds.length === 0) return undefined;
  const series = [
    ['parse success', (r: ReportData['rounds'][number]) => r.parse_success],
    ['grounding', (r: ReportData['rounds'][number]) => r.grounding_avg],
    ['duplicate rate', (r: ReportData['rounds'][number]) => r.duplicate_rate],
  ] as const;
  return {
    file: 'quality-by-round.png',
    config: {
      type: 'bar',
      data: { labels: roundLabels(d), datasets: series.map(([label, f], i) => ({ label, backgroundColor: colour(i), data: d.rounds.map(f) })) },
      options: base('Parse success, grounding and duplicates by round', { scales: shareAxis }),
    },
  };
}

/** Each judge's relevant and accurate rates by round, with their 95% intervals. */
function judgeRates(d: ReportData): ReportChart[] {
  return judgeSummaries(d).map((j, ji) => {
    const labels = [...j.rounds.map((r) => `round ${r.round}`), 'all'];
    const relevant = [...j.rounds.map((r) => r.relevant), j.relevant];
    const accurate = [...j.rounds.map((r) => r.accurate), j.accurate];
    return {
      file: `judge-rates-${ji}.png`,
      config: {
        type: 'bar',
        data: {
          labels,
          datasets: [
            { label: 'relevant', backgroundColor: colour(0), data: relevant.map((r) => r.rate) },
            { label: 'accurate', backgroundColor: colour(1), data: accurate.map((r) => r.rate) },
          ],
        },
        options: base(`Judge ${j.model}: relevant and accurate, with 95% intervals`, { scales: shareAxis }),
        plugins: [whiskers([relevant, accurate])],
      },
    };
  });
}

/** Each judge's task categories, as shares of its labelled pairs. */
function judgeCategories(d: ReportData): ReportChart[] {
  // Numbered as the page numbers the judges: over all of them, before those without categories are left out.
  return judgeSummaries(d)
    .map((j, ji) => ({ j, ji }))
    .filter(({ j }) => j.categories.length > 0)
    .map(({ j, ji }) => ({
      file: `judge-categories-${ji}.png`,
      config: {
        type: 'bar',
        data: { labels: j.categories.map((c) => c.category), datasets: [{ label: 'share of judged pairs', backgroundColor: colour(4), data: j.categories.map((c) => c.share) }] },
        options: base(`Judge ${j.model}: task categories`, { indexAxis: 'y', scales: { x: shareScale } }, false),
      },
    }));
}

/** Response F1: zero- and few-shot, on datasets seen in the synthesizer's tuning and unseen. */
function responseF1(d: ReportData): ReportChart | undefined {
  const cells = f1Cells(d);
  if (cells.length === 0) return undefined;
  const groups = ['seen', 'unseen'] as const;
  return {
    file: 'response-f1.png',
    config: {
      type: 'bar',
      data: {
        labels: [...groups],
        datasets: (['zero-shot', 'few-shot'] as const).map((shots, i) => ({ label: shots, backgroundColor: colour(i), data: groups.map((g) => cells.find((c) => c.shots === shots && c.seen === g)?.f1 ?? null) })),
      },
      options: base('Response F1: zero-/few-shot × seen/unseen datasets', { scales: { y: { min: 0, max: 1 } } }),
    },
  };
}

/** The general instructions' share of the mixed tokens: over time where recorded, and the target. */
function mixShare(d: ReportData): ReportChart | undefined {
  const target = d.run?.generalWeight;
  const over = d.mix.over.filter((p) => p.domain_tokens + p.general_tokens > 0);
  const final = realisedGeneralShare(d);
  const last = final ?? (over.length > 0 ? over[over.length - 1]!.general_tokens / (over[over.length - 1]!.domain_tokens + over[over.length - 1]!.general_tokens) : undefined);
  // Nothing but domain texts mixed, as asked: the section's table says so; an empty chart would not.
  if (last === undefined || (last === 0 && (target ?? 0) === 0 && over.every((p) => p.general_tokens === 0))) return undefined;
  if (over.length < 2) {
    // No history to draw (ipt serve was not following the changelog, or the run mixed within one bucket): the end of
    // the run beside the target.
    const bars = [['this run', last], ...(target === undefined ? [] : [['target', target]])] as [string, number][];
    return {
      file: 'mix-share.png',
      config: {
        type: 'bar',
        data: { labels: bars.map(([l]) => l), datasets: [{ label: 'general share of mixed tokens', backgroundColor: bars.map((_, i) => colour(i)), data: bars.map(([, v]) => v) }] },
        options: base('The mix: general instructions’ share of tokens at the end of the run', { scales: shareAxis }, false),
      },
    };
  }
  const points = over.map((p) => ({ label: p.minute.slice(11), share: p.general_tokens / (p.domain_tokens + p.general_tokens) }));
  return {
    file: 'mix-share.png',
    config: {
      type: 'line',
      data: {
        labels: points.map((p) => p.label),
        datasets: [
          { label: 'general share of mixed tokens', borderColor: colour(0), backgroundColor: colour(0), pointRadius: 4, data: points.map((p) => p.share) },
          ...(target === undefined ? [] : [{ label: `target (${(100 * target).toFixed(1)}%)`, borderColor: '#222', borderDash: [6, 4], pointRadius: 0, data: points.map(() => target) }]),
        ],
      },
      options: base('The mix: general instructions’ share of tokens', { scales: shareAxis }),
    },
  };
}

/** Every chart the run has data for, in the report's order. */
export function reportCharts(d: ReportData): ReportChart[] {
  return [pairsHistogram(d), pairsByRound(d), pairKinds(d), qualityByRound(d), ...judgeRates(d), ...judgeCategories(d), responseF1(d), mixShare(d)].filter((c): c is ReportChart => c !== undefined);
}
