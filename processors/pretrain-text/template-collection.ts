import type { Collection, CollectionEntry } from '../templating/multi-round.ts';
import { classifyPair, type PairKind, type TypedPair } from '../round-feedback/pair-kinds.ts';
import { drawPairStyle, renderPair, QA_FAMILIES, OPTION_STYLES } from './pair-templates.ts';
import { drawTextStyle, renderBlock, FEW_SHOT_SEPARATORS, type Layout } from './layouts.ts';
import { hashString, seededRng, textFingerprint } from './seeded-random.ts';

/** One pre-training text and what was drawn for it (for metrics and for the variety tests). */
export interface TemplatedText {
  text: string;
  entries: number;
  pairs: number;
  layout: Layout | 'raw';
  inverted: boolean;
  family: string | null;
  optionStyle: string | null;
  kinds: Partial<Record<PairKind, number>>;
  /** Pairs dropped because they show a CoT marker but are not well-formed CoT. */
  droppedPairs: number;
}

/** Groups: each starts at an entry that does not inherit and takes the following entries while they inherit. */
export function groupEntries(collection: Collection): CollectionEntry[][] {
  const groups: CollectionEntry[][] = [];
  for (const e of collection) {
    const current = groups[groups.length - 1];
    if (current && e.inheritFromPrev) current.push(e);
    else groups.push([e]);
  }
  return groups;
}

/**
 * Templates a collection into pre-training texts (docs/method.md §4): one text per group, its entries rendered as
 * reading-comprehension blocks joined by one few-shot separator; every raw text appears verbatim, once.
 * Draws depend only on the seed and the group's first text (its fingerprint), so replays and re-orderings give the
 * same text.
 */
export function templateCollection(collection: Collection, seed: string | number): TemplatedText[] {
  return groupEntries(collection).map((group) => templateGroup(group, seed));
}

/**
 * One group's pre-training text (see templateCollection). Plain loops and one result literal: it runs once per
 * templated text on the streaming path.
 */
export function templateGroup(group: CollectionEntry[], seed: string | number): TemplatedText {
  const rng = seededRng(textFingerprint(group[0]!.context, hashString(`${seed}\u0000`)));
  let dropped = 0;
  let pairCount = 0;
  let anyEmpty = false;
  let allMulti = true;
  let hasMc = false;
  const kinds: Partial<Record<PairKind, number>> = {};
  const typed: TypedPair[][] = [];
  for (const e of group) {
    const kept: TypedPair[] = [];
    for (const p of e.pairs) {
      const t = classifyPair(p);
      if (t.kind === 'malformed-cot') {
        dropped++;
        continue;
      }
      kinds[t.kind] = (kinds[t.kind] ?? 0) + 1;
      if (t.kind === 'mc' || t.kind === 'mc-cot') hasMc = true;
      kept.push(t);
    }
    typed.push(kept);
    pairCount += kept.length;
    if (kept.length === 0) anyEmpty = true;
    if (kept.length < 2) allMulti = false;
  }
  // An entry without pairs is only ever alone in its group; its text stands as it is.
  if ((pairCount === 0 || anyEmpty) && group.length === 1) {
    return { text: group[0]!.context, entries: 1, pairs: pairCount, layout: 'raw', inverted: false, family: null, optionStyle: null, kinds, droppedPairs: dropped };
  }
  const style = drawTextStyle(rng, allMulti);
  const pairStyle = drawPairStyle(rng);
  const separator = FEW_SHOT_SEPARATORS[style.fewShotSeparator];
  let text = '';
  for (let i = 0; i < group.length; i++) {
    const pairs = typed[i]!.map((p) => renderPair(p, pairStyle, rng));
    const block = pairs.length === 0 ? group[i]!.context : renderBlock(style, group[i]!.context, pairs);
    text = i === 0 ? block : text + separator + block;
  }
  return {
    text,
    entries: group.length,
    pairs: pairCount,
    layout: style.layout,
    inverted: style.inverted,
    family: QA_FAMILIES[style.family]!.name,
    optionStyle: hasMc ? OPTION_STYLES[pairStyle.optionStyle]!.name : null,
    kinds,
    droppedPairs: dropped,
  };
}
