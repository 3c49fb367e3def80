import { accessSync, constants } from 'node:fs';
import { ConfigError } from '../runtime/config-error.ts';
import { setting } from '../runtime/settings.ts';
import { templatingProcessor } from '../templating/templating-processor.ts';
import { synthesisProcessor } from '../synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../round-feedback/round-feedback-processor.ts';
import { mixingProcessor } from '../mixing/mixing-processor.ts';
import type { Stage } from '../runtime/processor.ts';
import { CollectionHandoff } from './collection-handoff.ts';
import { composeFused } from './fused-composition.ts';
import { poolJoin } from './pool-join.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { RawTextRecord } from './records.ts';

/** A spool folder that cannot be written fails at start-up, not at the first eviction in the middle of a run. */
function spoolDir(): string | undefined {
  const dir = setting('IPT_FUSED_SPOOL_DIR');
  if (!dir) return undefined;
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new ConfigError(`IPT_FUSED_SPOOL_DIR=${dir} is not a folder this process can write to (${(err as Error).message})`);
  }
  return dir;
}

/**
 * Templating → synthesis → round feedback → mixing in memory, in one processor over the raw-text topic (the fused cut
 * of the topology; Kafka Streams fuses a sub-topology's operators the same way), composed by the graph from the
 * stages' own handlers (composeFused). It writes what they write except what passes between them (requests, results,
 * and augmented texts the mixer takes): collections to the round pool (the changelog that restores the hand-over
 * between rounds and that `ipt rounds start` reads), the mixed stream with each text's lineage and the mixer's
 * changelog, and one metric event per synthesized text. Text i of round r + 1 takes collection i of round r from the
 * previous text's chain (the pool join, CollectionHandoff) rather than through the pool topic; a text that breaks the
 * ingest text rule is dead-lettered with the rule's reason while the collection it would have continued is closed and
 * its place handed on, as in the staged topology. Like the mixer, it runs as one instance per topic prefix (its mix
 * counts are per run); one process drives many LLM endpoints.
 */
export function fusedProcessor(ctx: PipelineContext): Stage<RawTextRecord, string> & { handoff: CollectionHandoff } {
  const handoff = new CollectionHandoff(ctx, setting('IPT_FUSED_MAX_HELD'), setting('IPT_FUSED_READ_BACK_MAX'), spoolDir());
  const members = {
    templating: templatingProcessor(ctx),
    synthesis: synthesisProcessor(ctx),
    'round-feedback': roundFeedbackProcessor(ctx),
    mixing: mixingProcessor(ctx),
  } as unknown as Parameters<typeof composeFused>[2];
  return { ...composeFused(ctx.topics, 'fused', members, poolJoin(ctx, handoff)), handoff };
}
