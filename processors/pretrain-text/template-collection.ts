import type { Collection, CollectionEntry } from '../templating/multi-round.ts';
import { classifyPair, type PairKind } from '../round-feedback/pair-kinds.ts';
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
 * Templates a collection into pre-training texts (SPEC §4): one text per group, its entries rendered as
 * reading-comprehension blocks joined by one few-shot separator; every raw text appears verbatim, once.
 * Draws depend only on the seed and the group's first text (its fingerprint), so replays and re-orderings give the
 * same text.
 */
export function templateCollection(collection: Collection, seed: string | number): TemplatedText[] {
  return groupEntries(collection).map((group) => templateGroup(group, seed));
}

/** One group's pre-training text (see templateCollection). */
export function templateGroup(group: CollectionEntry[], seed: string | number): TemplatedText {
  const rng = seededRng(textFingerprint(group[0]!.context, hashString(`${seed}\u0000`)));
  let dropped = 0;
  const kinds: Partial<Record<PairKind, number>> = {};
  const typed = group.map((e) =>
    e.pairs
      .map((p) => classifyPair(p))
      .filter((p) => {
        if (p.kind === 'malformed-cot') dropped++;
        else kinds[p.kind] = (kinds[p.kind] ?? 0) + 1;
        return p.kind !== 'malformed-cot';
      }),
  );
  const pairCount = typed.reduce((s, t) => s + t.length, 0);
  const base = { entries: group.length, pairs: pairCount, kinds, droppedPairs: dropped };
  if (pairCount === 0 || typed.some((t) => t.length === 0)) {
    // An entry without pairs is only ever alone in its group; its text stands as it is.
    if (group.length === 1) return { ...base, text: group[0]!.context, layout: 'raw', inverted: false, family: null, optionStyle: null };
  }
  const style = drawTextStyle(rng, typed.every((t) => t.length >= 2));
  const pairStyle = drawPairStyle(rng);
  const blocks = group.map((e, i) => {
    const pairs = typed[i]!.map((p) => renderPair(p, pairStyle, rng));
    return pairs.length === 0 ? e.context : renderBlock(style, e.context, pairs);
  });
  const hasMc = typed.some((t) => t.some((p) => p.kind === 'mc' || p.kind === 'mc-cot'));
  return {
    ...base,
    text: blocks.join(FEW_SHOT_SEPARATORS[style.fewShotSeparator]),
    layout: style.layout,
    inverted: style.inverted,
    family: QA_FAMILIES[style.family]!.name,
    optionStyle: hasMc ? OPTION_STYLES[pairStyle.optionStyle]!.name : null,
  };
}
