import type { CompletionResult, LlmRequest } from '../../processors/pipeline/llm-port.ts';

export interface Pending {
  req: LlmRequest;
  deadline: number;
  /** Requests sent for this record. */
  attempts: number;
  /** Of those, the ones a server failed (an error answer or a timeout); a refused connection is not counted. */
  failures: number;
  lastError: string;
  /** The endpoint that refused this record's last attempt: another one is tried first (chooseEndpoint). */
  refusedBy?: EndpointState;
  resolve: (r: CompletionResult) => void;
  reject: (e: Error) => void;
}

/**
 * One inference server as the pool sees it: its queue, what is in flight, and its in-flight window, which grows while
 * latency stays near the uncongested baseline (by one per success in slow start, then by one per window) and shrinks
 * on congestion: to half on 429, 503 and timeouts, by a fifth when latency runs far above the baseline, once per
 * round trip.
 */
export class EndpointState {
  window: number;
  inFlight = 0;
  slowStart = true;
  /** Lowest latency per generated token seen recently: the uncongested baseline. */
  baseline = Infinity;
  baselineAt = 0;
  downUntil = 0;
  /** After a decrease, further congestion signals are ignored until this many completions (one round trip). */
  holdUntil = 0;
  completed = 0;
  errors = 0;
  tokens = 0;
  /** Failed requests by kind (http429, http5xx, http4xx, timeout, connection), and the latest failure's text. */
  readonly failures: Record<string, number> = {};
  lastError = '';
  /** When the first completion came back (the generated tokens' rate is counted from then). */
  firstCompletedAt = 0;
  readonly queue: Pending[] = [];
  acceptsArrays = true;
  constructor(
    readonly url: string,
    window: number,
    private readonly bounds: { minWindow: number; maxWindow: number },
  ) {
    this.window = window;
  }
  get hasRoom(): boolean {
    return this.inFlight < Math.floor(this.window) && Date.now() >= this.downUntil;
  }

  onSuccess(r: CompletionResult): void {
    if (this.completed === 0) this.firstCompletedAt = Date.now();
    this.completed++;
    this.tokens += r.completionTokens ?? 0;
    const perToken = r.latencyMs / Math.max(1, r.completionTokens ?? 1);
    // The baseline drifts up by 1% a second, so that one lucky fast request does not pin it forever, while a
    // run of queued (slow) requests cannot talk it up within a round trip.
    const now = performance.now();
    if (this.baseline !== Infinity) this.baseline *= 1 + 0.01 * ((now - this.baselineAt) / 1000);
    this.baselineAt = now;
    this.baseline = Math.min(this.baseline, perToken);
    if (perToken > 8 * this.baseline) {
      // Latency far above the uncongested baseline: the server's queue is long. Queueing keeps its batch full, so
      // ease off only a little, and once per round trip.
      this.decrease(0.8);
      return;
    }
    this.window = Math.min(this.bounds.maxWindow, this.slowStart ? this.window + 1 : this.window + 1 / this.window);
  }

  /** A failed request of `count` prompts, of a kind (see failures). */
  onFailure(kind: string, count: number, text: string): void {
    this.errors += count;
    this.failures[kind] = (this.failures[kind] ?? 0) + count;
    this.lastError = text.slice(0, 300);
  }

  onCongestion(): void {
    this.decrease(0.5);
  }

  private decrease(factor: number): void {
    this.slowStart = false;
    if (this.completed + this.errors < this.holdUntil) return;
    this.window = Math.max(this.bounds.minWindow, this.window * factor);
    this.holdUntil = this.completed + this.errors + Math.ceil(this.window);
  }
}
