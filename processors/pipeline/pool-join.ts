import type { Emit, HandlerResult } from '../runtime/processor.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { pairCollection, templatingPoolOutputs } from '../templating/templating-pool-processor.ts';
import type { CollectionHandoff, HandoffSlot } from './collection-handoff.ts';
import type { JoinPort, JoinTicket } from './fused-composition.ts';
import { leaveOutContexts } from './pool-contexts.ts';
import { continuesCollection, hasNextText, placement, roundLength, type RunConfig } from './run-config.ts';
import type { PipelineContext } from './pipeline-context.ts';
import type { RawTextRecord, RoundCollectionRecord } from './records.ts';

type Result = HandlerResult<string>;

/**
 * The round pool's join edge in the fused stage: collection i of round r meets text i of round r + 1 in memory
 * (CollectionHandoff), and templating-pool's own pairing (pairCollection) makes the request or closes the collection.
 * A collection is written to the round pool without its raw texts (the changelog; the hand-over keeps it whole). A
 * run replayed from round N > 0 starts from round N − 1's collections in the round pool; those no text of round N
 * reaches are closed by the round's last text once its own collection is done (in the staged topology,
 * templating-pool closes them as it reads them).
 */
export function poolJoin(ctx: PipelineContext, handoff: CollectionHandoff): JoinPort<RawTextRecord> {
  const closesSeeded = (run: RunConfig, round: number, position: number) => run.startRound > 0 && round === run.startRound && position === roundLength(run, round) - 1;

  /** Collections [from, to) of a round closed one after another (each taken only once the one before is). */
  const closeEach = (run: RunConfig, round: number, from: number, to: number, emits: Emit[] = []): Result | Promise<Result> => {
    for (let j = from; j < to; j++) {
      const taken = handoff.take(run, round, j);
      if (taken instanceof Promise) {
        return taken.then((c) => {
          const r = pairCollection(ctx, run, c, undefined) as Result;
          if (Array.isArray(r)) emits.push(...r);
          return closeEach(run, round, j + 1, to, emits);
        });
      }
      const r = pairCollection(ctx, run, taken, undefined) as Result;
      if (Array.isArray(r)) emits.push(...r);
    }
    return emits;
  };

  const continuing = (run: RunConfig, raw: RawTextRecord): Result | Promise<Result> | undefined => {
    const p = placement(run, raw.seq);
    if (!continuesCollection(run, p)) return undefined;
    return whenReady(handoff.take(run, p.round - 1, p.position), (c) => pairCollection(ctx, run, c, raw));
  };

  const seeded = (run: RunConfig, raw: RawTextRecord): Result | Promise<Result> | undefined => {
    const p = placement(run, raw.seq);
    return closesSeeded(run, p.round, p.position) ? closeEach(run, p.round - 1, roundLength(run, p.round), roundLength(run, p.round - 1)) : undefined;
  };

  return {
    member: 'templating-pool',
    outputs: templatingPoolOutputs(ctx.topics),
    // Opened before the first await, so the text that continues this one's collection finds the slot.
    begin: (raw) => new PoolTicket(ctx, raw, raw.convert && raw.seq >= 0 ? handoff.open(raw.runId, raw.seq) : undefined, continuing, seeded),
    close: () => handoff.stop(),
  };
}

type Pairing = (run: RunConfig, raw: RawTextRecord) => Result | Promise<Result> | undefined;

/** One text's part in the join. A class, not closures: one is made per text on the hot path. */
class PoolTicket implements JoinTicket {
  constructor(
    private readonly ctx: PipelineContext,
    private readonly raw: RawTextRecord,
    private readonly slot: HandoffSlot | undefined,
    private readonly continuing: Pairing,
    private readonly seeded: Pairing,
  ) {}

  paired(): Result | Promise<Result | undefined> | undefined {
    return this.slot ? whenReady(this.ctx.run(this.raw.runId), (run) => this.continuing(run, this.raw)) : undefined;
  }

  beforeGive(): Result | Promise<Result | undefined> | undefined {
    return this.slot ? whenReady(this.ctx.run(this.raw.runId), (run) => this.seeded(run, this.raw)) : undefined;
  }

  give(e: Emit): { write: Emit; paired?: Result | Promise<Result> } | Promise<{ write: Emit; paired?: Result | Promise<Result> }> {
    const c = e.value as RoundCollectionRecord;
    const write: Emit = { to: e.to, key: e.key, value: leaveOutContexts(c) };
    return whenReady(this.ctx.run(c.runId), (run) => {
      if (!hasNextText(run, c)) return { write, paired: pairCollection(this.ctx, run, c, undefined) };
      this.slot?.fill(c);
      return { write };
    });
  }

  end(): void {
    this.slot?.close();
  }
}
