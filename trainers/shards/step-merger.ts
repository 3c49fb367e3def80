import type { TokenBatchRecord } from '../sink/trainer-sink-processor.ts';

/** A token batch with where it was read: its partition (the rank) and offset in the token topic. */
export interface PlacedBatch {
  batch: TokenBatchRecord;
  partition: number;
  offset: bigint;
}

/**
 * The token topic's batches of one run back in one order, by global step. Batch g is on partition g mod worldSize and
 * the partitions are read side by side, so a batch may arrive before the ones ahead of it: it is held until they are
 * in. A step seen again (an at-least-once sink re-sent it after a restart) is counted and dropped, once its bytes are
 * checked to be the same: two different batches under one step mean two sinks wrote the run, and that is an error.
 */
export class StepMerger {
  duplicates = 0;
  private readonly pending = new Map<number, PlacedBatch>();

  constructor(private nextStep: number) {}

  get next(): number {
    return this.nextStep;
  }

  /** Steps read but not yet in order (a step ahead of them is still to come). */
  get held(): number {
    return this.pending.size;
  }

  add(b: PlacedBatch): void {
    const g = Number(b.batch.globalStep);
    if (g < this.nextStep) {
      this.duplicates++;
      return;
    }
    const earlier = this.pending.get(g);
    if (earlier) {
      if (!earlier.batch.tokens.equals(b.batch.tokens)) {
        throw new Error(`run ${b.batch.runId}: global step ${g} is in the token topic twice with different tokens (partition ${earlier.partition} offset ${earlier.offset} and partition ${b.partition} offset ${b.offset}): two sinks wrote this run`);
      }
      this.duplicates++;
      return;
    }
    this.pending.set(g, b);
  }

  /** The batches now in order, each once, removed from the held ones. */
  *drain(): Generator<PlacedBatch> {
    for (let b = this.pending.get(this.nextStep); b; b = this.pending.get(this.nextStep)) {
      this.pending.delete(this.nextStep);
      this.nextStep++;
      yield b;
    }
  }
}
