import { SETTINGS } from '../../processors/runtime/settings.ts';
/** The default bound on ids remembered per open run (IPT_MAX_RUN_IDS). */
export const DEFAULT_MAX_RUN_IDS = SETTINGS.IPT_MAX_RUN_IDS.fallback;

/** The ids of one open run that this process has taken in. */
export interface RunIds {
  readonly runId: string;
  /** Ids it remembers at most (the bound). */
  readonly bound: number;
  has(id: string): boolean;
  /** How many more ids it can take. */
  room(): number;
}

/**
 * The ids each open run has taken in over HTTP, so that an id sent again in a later request is refused instead of
 * stored twice. An id is held from the moment its request validates it (so two racing requests cannot both take it)
 * and let go if it ends up not stored.
 *
 * Bounded: each run remembers at most `bound` ids (about 100–600 bytes each, with the id's length). Beyond the
 * bound a run takes no new ids through this process (they are refused, naming the bound) rather than forget old
 * ones and let a repeat through: the operator raises IPT_MAX_RUN_IDS, or opens a new run.
 *
 * What is not seen: ids ingested through another serve instance, or before this process started. Those would need
 * the raw topic read back; this only stops repeats within one process's lifetime.
 */
export class RunIdRegistry {
  private readonly runs = new Map<string, Set<string>>();

  constructor(readonly bound: number = DEFAULT_MAX_RUN_IDS) {
    if (!Number.isInteger(bound) || bound < 1) throw new Error(`the bound on ids per run must be a positive integer (got ${bound})`);
  }

  forRun(runId: string): RunIds & { take(ids: readonly string[]): void; release(ids: readonly string[]): void } {
    const ids = this.runs.get(runId) ?? new Set<string>();
    this.runs.set(runId, ids);
    const bound = this.bound;
    return {
      runId,
      bound,
      has: (id) => ids.has(id),
      room: () => Math.max(0, bound - ids.size),
      take: (taken) => {
        if (taken.length > bound - ids.size) throw new Error(`run "${runId}": ${taken.length} ids exceed the room left (${bound - ids.size})`);
        for (const id of taken) ids.add(id);
      },
      release: (released) => {
        for (const id of released) ids.delete(id);
      },
    };
  }

  /** Ids remembered for a run. */
  size(runId: string): number {
    return this.runs.get(runId)?.size ?? 0;
  }
}
