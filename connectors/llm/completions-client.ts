import { setTimeout as sleep } from 'node:timers/promises';

export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  stop?: string[];
}

export interface CompletionResult {
  text: string;
  finishReason: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number;
  attempts: number;
}

export interface CompletionsClientOptions {
  /** Base URL of an OpenAI-compatible API, e.g. http://host:8000/v1; requests go to {url}/completions. */
  url: string;
  model: string;
  concurrency?: number;
  retries?: number;
  timeoutMs?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  apiKey?: string;
  /** Extra fields sent with every completion request (guided-decoding constraints, server-specific options). */
  extraBody?: Record<string, unknown>;
}

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

class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

const RETRIABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

/**
 * Client of an OpenAI-compatible completions endpoint (vLLM, SGLang, TGI, llama.cpp): bounded concurrency,
 * per-attempt timeout, jittered exponential backoff on network errors, timeouts, 429 and 5xx. A 4xx that is not
 * retriable fails the prompt at once: retrying an invalid request cannot help.
 */
export class CompletionsClient {
  private readonly sem: Semaphore;
  private readonly opts: Required<Omit<CompletionsClientOptions, 'apiKey' | 'extraBody'>> & { apiKey?: string; extraBody?: Record<string, unknown> };

  constructor(opts: CompletionsClientOptions) {
    this.opts = { concurrency: 32, retries: 4, timeoutMs: 120_000, backoffMs: 500, maxBackoffMs: 20_000, ...opts, url: opts.url.replace(/\/+$/, '') };
    this.sem = new Semaphore(this.opts.concurrency);
  }

  private headers(): Record<string, string> {
    return { 'content-type': 'application/json', ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) };
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    await this.sem.acquire();
    try {
      return await this.withRetries(req);
    } finally {
      this.sem.release();
    }
  }

  private async withRetries(req: CompletionRequest): Promise<CompletionResult> {
    const body = JSON.stringify({ ...this.opts.extraBody, model: this.opts.model, prompt: req.prompt, max_tokens: req.maxTokens, temperature: req.temperature, ...(req.stop ? { stop: req.stop } : {}) });
    let lastError = '';
    for (let attempt = 1; attempt <= this.opts.retries + 1; attempt++) {
      const started = performance.now();
      try {
        const res = await fetch(`${this.opts.url}/completions`, { method: 'POST', headers: this.headers(), body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
        const text = await res.text();
        if (!res.ok) {
          lastError = `HTTP ${res.status}: ${text.slice(0, 300)}`;
          if (!RETRIABLE_STATUS.has(res.status)) throw new CompletionError(`completion request rejected: ${lastError}`, attempt, res.status);
        } else {
          const json = JSON.parse(text) as { choices?: { text?: string; finish_reason?: string | null }[]; usage?: { prompt_tokens?: number; completion_tokens?: number } };
          const choice = json.choices?.[0];
          if (!choice || typeof choice.text !== 'string') throw new CompletionError(`completion response has no choices[0].text: ${text.slice(0, 300)}`, attempt);
          return {
            text: choice.text,
            finishReason: choice.finish_reason ?? null,
            promptTokens: json.usage?.prompt_tokens ?? null,
            completionTokens: json.usage?.completion_tokens ?? null,
            latencyMs: performance.now() - started,
            attempts: attempt,
          };
        }
      } catch (err) {
        if (err instanceof CompletionError) throw err;
        const e = err as Error;
        lastError = e.name === 'TimeoutError' ? `timed out after ${this.opts.timeoutMs} ms` : `${e.name}: ${e.message}${(e as { cause?: Error }).cause ? ` (${(e as { cause?: Error }).cause!.message})` : ''}`;
      }
      if (attempt <= this.opts.retries) await sleep(this.backoff(attempt));
    }
    throw new CompletionError(`completion failed after ${this.opts.retries + 1} attempts: ${lastError}`, this.opts.retries + 1);
  }

  /** Full jitter: a uniform wait in [0, min(max, base·2^(attempt−1))]. */
  private backoff(attempt: number): number {
    return Math.random() * Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (attempt - 1));
  }

  /**
   * Token count from the server's tokenize endpoint (vLLM: POST /tokenize {model, prompt} → {count};
   * llama.cpp: POST /tokenize {content} → {tokens}). Returns undefined when the server has none.
   */
  async countTokens(text: string): Promise<number | undefined> {
    const origin = new URL(this.opts.url).origin;
    const res = await fetch(`${origin}/tokenize`, { method: 'POST', headers: this.headers(), body: JSON.stringify({ model: this.opts.model, prompt: text, content: text }), signal: AbortSignal.timeout(this.opts.timeoutMs) }).catch(() => undefined);
    if (!res || !res.ok) return undefined;
    const json = (await res.json()) as { count?: number; tokens?: unknown[] };
    if (typeof json.count === 'number') return json.count;
    if (Array.isArray(json.tokens)) return json.tokens.length;
    return undefined;
  }
}
