import { wilsonInterval, type Rate } from '../../processors/evaluation/judge.ts';
import { PAPER_FIGURES, type PaperFigure } from '../../processors/evaluation/paper-figures.ts';
import type { ReportData } from './report-data.ts';

/** One line of the comparison: the run's figure beside the paper's (docs/method.md §8). */
export interface Comparison {
  quantity: string;
  run: string;
  paper: string;
  source: string;
}

/** F1 averaged over a cell's records (each dataset weighted by its records), as the paper's zero-/few-shot × seen/unseen. */
export interface F1Cell {
  shots: 'zero-shot' | 'few-shot';
  seen: 'seen' | 'unseen';
  records: number;
  f1: number;
  exactMatch: number;
}

export interface JudgeSummary {
  model: string;
  pairs: number;
  /** The texts the pairs came from. */
  texts: number;
  judged: number;
  relevant: Rate;
  accurate: Rate;
  rounds: { round: number; judged: number; relevant: Rate; accurate: Rate }[];
  categories: { category: string; pairs: number; share: number }[];
}

/** A share as a percentage with one decimal; a dash for a value that is not a number. */
export const pct = (x: number, digits = 1) => (Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '—');
export const rateText = (r: Rate) => (r.n === 0 ? '—' : `${pct(r.rate)} [${pct(r.low)}, ${pct(r.high)}] of ${r.n}`);

export function f1Cells(d: ReportData): F1Cell[] {
  const cells: F1Cell[] = [];
  for (const shots of ['zero-shot', 'few-shot'] as const)
    for (const seen of ['seen', 'unseen'] as const) {
      const rows = d.f1.filter((r) => (r.shots > 0) === (shots === 'few-shot') && (r.seen > 0) === (seen === 'seen'));
      const records = rows.reduce((a, r) => a + r.records, 0);
      if (records === 0) continue;
      cells.push({ shots, seen, records, f1: rows.reduce((a, r) => a + r.f1 * r.records, 0) / records, exactMatch: rows.reduce((a, r) => a + r.exact_match * r.records, 0) / records });
    }
  return cells;
}

export function judgeSummaries(d: ReportData): JudgeSummary[] {
  return d.judges.map((j) => {
    const sum = (k: 'pairs' | 'texts' | 'judged' | 'relevant' | 'accurate') => j.rounds.reduce((a, r) => a + r[k], 0);
    const judged = sum('judged');
    const labelled = j.categories.reduce((a, c) => a + c.pairs, 0);
    return {
      model: j.model,
      pairs: sum('pairs'),
      texts: sum('texts'),
      judged,
      relevant: wilsonInterval(sum('relevant'), judged),
      accurate: wilsonInterval(sum('accurate'), judged),
      rounds: j.rounds.map((r) => ({ round: r.round, judged: r.judged, relevant: wilsonInterval(r.relevant, r.judged), accurate: wilsonInterval(r.accurate, r.judged) })),
      categories: j.categories.map((c) => ({ ...c, share: labelled === 0 ? 0 : c.pairs / labelled })),
    };
  });
}

/** Pairs per synthesized text over the whole run (texts that failed or were skipped count, with no pairs). */
export function pairsPerText(d: ReportData): number | undefined {
  const texts = d.rounds.reduce((a, r) => a + r.texts, 0);
  return texts === 0 ? undefined : d.rounds.reduce((a, r) => a + r.pairs_total, 0) / texts;
}

/** The general instructions' share of the mixed tokens, as the mixer last recorded it. */
export function realisedGeneralShare(d: ReportData): number | undefined {
  const f = d.mix.final;
  if (!f || f.domainTokens + f.generalTokens === 0) return undefined;
  return f.generalTokens / (f.domainTokens + f.generalTokens);
}

const line = (f: PaperFigure, run: string): Comparison => ({ quantity: f.quantity, run, paper: f.shown, source: f.source });

/** The run beside the paper, quantity by quantity; "—" where the run has no figure for it. */
export function comparisons(d: ReportData): Comparison[] {
  const P = PAPER_FIGURES;
  const out: Comparison[] = [];
  const ppt = pairsPerText(d);
  out.push(line(P.pairsPerText, ppt === undefined ? '—' : ppt.toFixed(2)));
  const run = d.run;
  const rounds = run ? String(run.rounds) : d.rounds.length > 0 ? `${Math.max(...d.rounds.map((r) => r.round)) + 1} (from the metrics)` : '—';
  out.push(line(run?.preset === 'domain-adaptive' ? P.roundsDomain : P.roundsFromScratch, rounds));
  if (run?.preset === 'domain-adaptive') out.push(line(P.roundsFromScratch, '—'));
  else out.push(line(P.roundsDomain, '—'));
  const converted = run && run.convertedTexts !== null && run.ingested > 0 ? `${pct(run.convertedTexts / run.ingested)} (${run.convertedTexts} of ${run.ingested})` : '—';
  out.push(line(run?.preset === 'domain-adaptive' ? P.convertedDomain : P.convertedFromScratch, converted));
  out.push(line(P.maxNewTokens, run ? String(run.maxNewTokens) : '—'));
  const judges = judgeSummaries(d);
  const categories = new Set(judges.flatMap((j) => j.categories.map((c) => c.category)));
  out.push(line(P.taskCategories, judges.length === 0 ? '—' : `${categories.size} of the judge's families`));
  out.push(line(P.judgeSample, judges.length === 0 ? '—' : judges.map((j) => `${j.judged} pairs of ${j.texts} texts (${j.model})`).join('; ')));
  out.push(line(P.judgeRates, judges.length === 0 ? '—' : judges.map((j) => `relevant ${rateText(j.relevant)}, accurate ${rateText(j.accurate)}`).join('; ')));
  const cells = f1Cells(d);
  out.push(line(P.responseF1, cells.length === 0 ? '—' : cells.map((c) => `${c.shots} ${c.seen} ${c.f1.toFixed(3)}`).join(', ')));
  return out;
}
