/**
 * What the paper reports for quantities a run also measures (docs/method.md §8), so a run's report can put its own
 * figures beside them. Only values docs/method.md states are given; where the paper shows a quantity only in a chart,
 * `value` is null and `shown` says so, rather than a number read off a picture.
 */
export interface PaperFigure {
  /** What is compared, as the report names it. */
  quantity: string;
  /** The paper's value in the report's unit (a share in [0, 1], a count), or null when none is stated. */
  value: number | null;
  /** The paper's figure as the report prints it. */
  shown: string;
  /** Where docs/method.md states it. */
  source: string;
}

export const PAPER_FIGURES = {
  pairsPerText: { quantity: 'pairs per converted text', value: 5, shown: '5 (200M pairs from 40M texts)', source: '§5.1' },
  roundsFromScratch: { quantity: 'rounds, from scratch', value: 2, shown: '2', source: '§3.8' },
  roundsDomain: { quantity: 'rounds, domain-adaptive', value: 3, shown: '3', source: '§3.8' },
  convertedFromScratch: { quantity: 'texts converted, from scratch', value: 0.2, shown: '20% (40M of 200M)', source: '§5.1' },
  convertedDomain: { quantity: 'texts converted, domain-adaptive', value: 1, shown: '100%', source: '§5.2' },
  taskCategories: { quantity: 'task categories', value: 40, shown: 'more than 40 (finer than the judge’s 14 families)', source: '§5.1, §7.4' },
  judgeSample: { quantity: 'judged sample', value: 500, shown: '500 texts (their pairs), judged by GPT-4', source: '§7.3' },
  judgeRates: { quantity: 'relevant and accurate rates', value: null, shown: 'charted in the paper; no value stated here', source: '§7.3' },
  responseF1: { quantity: 'response F1, zero-/few-shot × seen/unseen', value: null, shown: 'charted in the paper; no value stated here', source: '§7.1' },
  maxNewTokens: { quantity: 'new tokens per output', value: 400, shown: '400', source: '§3.8' },
} as const satisfies Record<string, PaperFigure>;

export type PaperFigureKey = keyof typeof PAPER_FIGURES;
