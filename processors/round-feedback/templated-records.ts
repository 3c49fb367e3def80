import { groupEntries, templateGroup } from '../pretrain-text/template-collection.ts';
import type { AugmentedTextRecord, PipelineEntry } from '../pipeline/records.ts';

/**
 * A finished collection as augmented-text records (docs/method.md §4): one per group, with the ids of the raw texts it holds.
 * The record id is the group's first text id, unique within the run since every text is in exactly one group.
 */
export function templatedRecords(runId: string, round: number, collection: PipelineEntry[], seed: number): AugmentedTextRecord[] {
  const groups = groupEntries(collection) as PipelineEntry[][];
  return groups.map((group) => {
    const t = templateGroup(group, seed);
    return {
      id: group[0]!.contextId,
      runId,
      round,
      converted: true,
      text: t.text,
      textIds: group.map((e) => e.contextId),
      pairs: t.pairs,
      layout: t.layout,
      inverted: t.inverted,
      createdAt: Date.now(),
    };
  });
}
