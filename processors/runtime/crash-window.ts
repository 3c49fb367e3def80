/**
 * Crashes of a consumer counted over a sliding window: it is rebuilt after each, until more than `max` fall within
 * `windowMs` — then its owner gives up and says so, rather than rebuilding it forever (a stage's consumer, a table's).
 */
export class CrashWindow {
  private readonly at: number[] = [];

  constructor(
    readonly max: number,
    readonly windowMs: number,
  ) {}

  /** Counts a crash at `now`; whether the owner should give up (more than `max` crashes within the window). */
  record(now = Date.now()): boolean {
    this.at.push(now);
    while (this.at.length > 0 && this.at[0]! < now - this.windowMs) this.at.shift();
    return this.at.length > this.max;
  }

  /** Crashes within the window, as of the last one counted. */
  get count(): number {
    return this.at.length;
  }

  /** "crashed N times within S s; last: …", for the failure an owner reports. */
  describe(last: Error): string {
    return `crashed ${this.at.length} times within ${this.windowMs / 1000} s; last: ${last.message}`;
  }
}
