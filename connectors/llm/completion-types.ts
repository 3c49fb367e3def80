/** A request that failed for good, after its retries (or at once, for a request the server calls invalid). */
export class CompletionError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CompletionError';
  }
}
