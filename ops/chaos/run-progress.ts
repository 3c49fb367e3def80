import { setTimeout as sleep } from 'node:timers/promises';
import type { LlmEndpoints } from './llm-endpoints.ts';

interface Sample {
  t: number;
  accounted: number;
  served: number;
  rows: number;
}

/** What the run has done so far, sampled twice a second: accounted texts, LLM prompts answered, ClickHouse rows. */
export class Progress {
  accounted = 0;
  rows = 0;
  readonly samples: Sample[] = [];
  /** The run returned or failed: the faults stop; sampling goes on until stop(). */
  done = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly llm: LlmEndpoints,
    private readonly countRows: () => Promise<number>,
  ) {}

  served(): number {
    return this.llm.served();
  }

  start(): void {
    const t0 = (this.t0 = Date.now());
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        // While ClickHouse is down the count stays where it was.
        this.rows = await this.countRows().catch(() => this.rows);
        this.samples.push({ t: Date.now() - t0, accounted: this.accounted, served: this.served(), rows: this.rows });
      })().finally(() => (busy = false));
    }, 500);
  }

  private t0 = Date.now();
  now(): number {
    return Date.now() - this.t0;
  }

  endRun(): void {
    this.done = true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.done = true;
  }

  /** Resolves true when cond() holds, false when the run ended first. */
  async until(cond: () => boolean, pollMs = 100): Promise<boolean> {
    while (!this.done) {
      if (cond()) return true;
      await sleep(pollMs);
    }
    return false;
  }

  /**
   * Seconds from a fault's end until the run moved again: the LLM answering again, and after that new metric rows in
   * ClickHouse (one per synthesized text, written by the stage that did the work and stored by the sink). Rows, not
   * the accounted count: in a run of several rounds a text is accounted for only once its collection's last round is
   * done, so that count stands still for the whole first round. The run's end when it never moved again.
   */
  recoveredAfter(endMs: number, runEndMs: number): number {
    return Math.max(0, ((this.movedAt(endMs) ?? runEndMs) - endMs) / 1000);
  }

  /** When (ms into the run) the run moved again after endMs, by the samples so far; undefined while it has not. */
  movedAt(endMs: number): number | undefined {
    const before = (t: number) => [...this.samples].reverse().find((s) => s.t <= t) ?? { t, accounted: 0, served: 0, rows: 0 };
    const atEnd = before(endMs);
    const working = this.samples.find((s) => s.t > endMs && s.served > atEnd.served);
    return working && this.samples.find((s) => s.t > working.t && s.rows > before(working.t).rows)?.t;
  }
}
