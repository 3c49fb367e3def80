/**
 * A long job's progress as one human line: done of total, the rate over the last stretch and the time left at that
 * rate. `update` returns the line to print, at most once per `everyMs` (and always for the last unit), so a job that
 * counts per record does not print per record.
 */
export class ProgressLine {
  private lastAt = 0;
  private lastDone = 0;
  private rate = 0;
  private printedAt = -Infinity;

  constructor(
    private readonly total: number,
    private readonly unit: string,
    private readonly everyMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    this.lastAt = now();
  }

  update(done: number): string | undefined {
    const t = this.now();
    if (t > this.lastAt && done > this.lastDone) {
      const current = ((done - this.lastDone) * 1000) / (t - this.lastAt);
      // Smoothed, so one slow or fast stretch does not swing the estimate.
      this.rate = this.rate === 0 ? current : 0.7 * this.rate + 0.3 * current;
      this.lastAt = t;
      this.lastDone = done;
    }
    if (done < this.total && t - this.printedAt < this.everyMs) return undefined;
    this.printedAt = t;
    const pace = this.rate > 0 ? `, ${this.rate >= 10 ? Math.round(this.rate) : this.rate.toFixed(1)} ${this.unit}/s` : '';
    const left = done < this.total && this.rate > 0 ? `, about ${duration((this.total - done) / this.rate)} left` : '';
    return `${done}/${this.total} ${this.unit}${pace}${left}`;
  }
}

/** 75 → "1m15s", 3725 → "1h02m". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
