import { formatExample, formatSynthesizerInput, type QAPair } from './synthesizer-format.ts';
import { fitsWithin, type LengthEstimator } from './length-estimators.ts';

/** One text of a collection with its pairs and the two flags that chain few-shot examples (docs/method.md §3). */
export interface CollectionEntry {
  context: string;
  pairs: QAPair[];
  inheritFromPrev: boolean;
  followedByNext: boolean;
}
export type Collection = CollectionEntry[];

export interface LengthBudget {
  maxModelLen: number;
  maxNewTokens: number;
  estimate: LengthEstimator;
}

/** Round r takes texts [r·B, (r+1)·B) with B = ceil(N / M); later rounds may be short or empty. */
export function roundRanges(n: number, rounds: number): [number, number][] {
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer (got ${rounds})`);
  const b = Math.ceil(n / rounds);
  return Array.from({ length: rounds }, (_, r) => [Math.min(r * b, n), Math.min((r + 1) * b, n)] as [number, number]);
}

/** The few-shot history ending at a collection's last entry: walk back while entries inherit from their predecessor. */
export function fewShotHistory(collection: Collection): string {
  let j = collection.length - 1;
  let history = formatExample(collection[j]!.context, collection[j]!.pairs);
  while (j > 0 && collection[j]!.inheritFromPrev) {
    j--;
    history = formatExample(collection[j]!.context, collection[j]!.pairs) + history;
  }
  return history;
}

export interface PromptPlan {
  prompt: string;
  /** The previous collection with its last entry's followedByNext decided; undefined for a text that starts a new one. */
  collection: Collection | undefined;
  fewShot: boolean;
}

/** The prompt for one text of a round r > 0, given the previous-round collection it is paired with (if any). */
export function planPrompt(text: string, prev: Collection | undefined, budget: LengthBudget): PromptPlan | Promise<PromptPlan> {
  const zeroShot = formatSynthesizerInput(text);
  if (!prev || prev.length === 0) return { prompt: zeroShot, collection: undefined, fewShot: false };
  const last = prev[prev.length - 1]!;
  if (last.pairs.length === 0) return { prompt: zeroShot, collection: withLastFlag(prev, false), fewShot: false };
  const candidate = fewShotHistory(prev) + zeroShot;
  // Synchronous when the estimate is (no microtask per text on the streaming path).
  const fits = fitsWithin(budget.estimate, candidate, budget.maxModelLen - budget.maxNewTokens);
  return fits instanceof Promise ? fits.then((f) => chosen(f, prev, candidate, zeroShot)) : chosen(fits, prev, candidate, zeroShot);
}

/** Few-shot when the history fits the budget, else zero-shot with the collection closed. */
function chosen(fits: boolean, prev: Collection, fewShot: string, zeroShot: string): PromptPlan {
  return fits ? { prompt: fewShot, collection: withLastFlag(prev, true), fewShot: true } : { prompt: zeroShot, collection: withLastFlag(prev, false), fewShot: false };
}

/** The collection with its last entry's followedByNext set. */
function withLastFlag(c: Collection, followedByNext: boolean): Collection {
  return [...c.slice(0, -1), { ...c[c.length - 1]!, followedByNext }];
}

/** Appends a text's parsed pairs to its collection; it inherits exactly when the predecessor was followed and pairs exist. */
export function appendEntry(collection: Collection | undefined, context: string, pairs: QAPair[]): Collection {
  const prevLast = collection?.[collection.length - 1];
  const entry: CollectionEntry = { context, pairs, inheritFromPrev: prevLast?.followedByNext === true && pairs.length > 0, followedByNext: false };
  return [...(collection ?? []), entry];
}

export interface RoundPlan {
  round: number;
  texts: string[];
  plans: PromptPlan[];
  /** Previous collections no text of this round was paired with, each closed (followedByNext = false). */
  leftovers: Collection[];
}

/** Plans one round in the batch form: text i of the round is paired with collection i of the previous round. */
export async function planRound(round: number, texts: string[], previous: Collection[], budget: LengthBudget): Promise<RoundPlan> {
  const plans: PromptPlan[] = [];
  for (let i = 0; i < texts.length; i++) {
    plans.push(round === 0 ? { prompt: formatSynthesizerInput(texts[i]!), collection: undefined, fewShot: false } : await planPrompt(texts[i]!, previous[i], budget));
  }
  const leftovers = previous.slice(texts.length).map(closeCollection);
  return { round, texts, plans, leftovers };
}

/** A collection with its last entry closed (followedByNext = false): nothing will continue it. */
export function closeCollection<C extends Collection>(c: C): C {
  const last = c[c.length - 1];
  return (last ? [...c.slice(0, -1), { ...last, followedByNext: false }] : c) as C;
}

/**
 * The collections after a round: each text's collection with its new entry, the round's leftovers placed in order
 * before the collections of its texts 0, 1, … — in the same collection, the carried entries first (their last entry
 * closed, so the two never connect and template into separate texts), as the reference writes them. Leftovers beyond
 * the number of texts (where the reference fails) are carried after them, unchanged but closed, so no text is ever lost.
 */
export function finishRound(plan: RoundPlan, pairsPerText: QAPair[][]): Collection[] {
  if (pairsPerText.length !== plan.texts.length) throw new Error(`round ${plan.round}: ${pairsPerText.length} outputs for ${plan.texts.length} texts`);
  const out: Collection[] = [];
  for (let i = 0; i < plan.texts.length; i++) {
    const own = appendEntry(plan.plans[i]!.collection, plan.texts[i]!, pairsPerText[i]!);
    out.push(i < plan.leftovers.length ? [...plan.leftovers[i]!, ...own] : own);
  }
  for (let i = plan.texts.length; i < plan.leftovers.length; i++) out.push(plan.leftovers[i]!);
  return out;
}
