import { setting } from '../../processors/runtime/settings.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompletionError } from './completion-types.ts';
import { EndpointState, type Pending } from './endpoint-state.ts';
import { chooseEndpoint } from './endpoint-routing.ts';
import { completionResults } from './completion-response.ts';
import type { BackendStats, CompletionRequest, CompletionResult, LlmClient, LlmRequest } from '../../processors/pipeline/llm-port.ts';

export interface PoolOptions {
  /** Base URLs of OpenAI-compatible servers (…/v1). */
  endpoints: string[];
  model: string;
  /** Starting in-flight window per endpoint; it doubles per window of successes until the first congestion signal. */
  initialWindow?: number;
  minWindow?: number;
  maxWindow?: number;
  /**
   * Whole-record budget, queueing and outages included: retries stop when the next attempt could not start before
   * it. While every endpoint refuses connections (a restart, an outage) a record waits within this budget rather
   * than spending its attempts, so a bounded outage costs time, not texts.
   */
  deadlineMs?: number;
  /** Attempts per record at most (first try included) that a server answered with an error or let time out. */
  maxAttempts?: number;
  timeoutMs?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Prompts per request at most, sent as a `prompt` array (vLLM, llama.cpp, TGI accept arrays); 1 sends one per
   * request. A server that answers an array with a 4xx is sent single prompts from then on.
   */
  batchPrompts?: number;
  /** Route requests with the same affinity key to the same endpoint (rendezvous hashing), for its prefix cache. */
  affinity?: boolean;
  extraBody?: Record<string, unknown>;
  /** Sent as a bearer token to every endpoint; by default IPT_LLM_API_KEY, else OPENAI_API_KEY. */
  apiKey?: string;
}

/** The LLM servers' API key from the environment: IPT_LLM_API_KEY, falling back to OPENAI_API_KEY. */
export function llmApiKey(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return setting('IPT_LLM_API_KEY', env) ?? (env.OPENAI_API_KEY || undefined);
}

/** What a 401 or 403 from an LLM server means for the operator. */
const KEY_HINT = 'the server wants an API key: set IPT_LLM_API_KEY (or OPENAI_API_KEY)';

function sameParameters(a: CompletionRequest, b: CompletionRequest): boolean {
  return a.maxTokens === b.maxTokens && a.temperature === b.temperature && JSON.stringify(a.stop ?? null) === JSON.stringify(b.stop ?? null);
}

/** A failed fetch in words: the message with the system error code behind it (ECONNREFUSED, ENOTFOUND, …). */
function connectionError(err: unknown): string {
  const x = err as Error & { cause?: { code?: string; message?: string } };
  return `${x.message}${x.cause ? ` (${x.cause.code ?? x.cause.message})` : ''}`;
}

const RETRIABLE = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
const CONGESTION = new Set([429, 503]);

/**
 * Keeps several inference servers saturated: a per-endpoint in-flight window that grows while latency and errors
 * stay flat (doubling at first, then by one per window of successes) and halves on 429, 503 and timeouts; requests
 * wait in per-endpoint queues, never in a busy loop; an endpoint that refuses connections is skipped until its
 * backoff passes and then tried again, so traffic resumes when it returns. With affinity, prompts that share a
 * few-shot history go to the same endpoint so its prefix cache is reused.
 */
export class SynthesisPool implements LlmClient {
  private readonly eps: EndpointState[];
  private readonly opts: Required<Omit<PoolOptions, 'extraBody' | 'apiKey'>> & Pick<PoolOptions, 'extraBody' | 'apiKey'>;
  private rr = 0;

  constructor(opts: PoolOptions) {
    if (opts.endpoints.length === 0) throw new Error('SynthesisPool needs at least one endpoint');
    this.opts = {
      initialWindow: 8,
      minWindow: 1,
      maxWindow: 1024,
      deadlineMs: 600_000,
      maxAttempts: 8,
      timeoutMs: 120_000,
      backoffMs: 250,
      maxBackoffMs: 10_000,
      affinity: true,
      batchPrompts: 1,
      ...opts,
      apiKey: opts.apiKey ?? llmApiKey(),
    };
    this.eps = opts.endpoints.map((u) => new EndpointState(u.replace(/\/+$/, ''), this.opts.initialWindow, this.opts));
  }

  /** Each endpoint as the pool sees it now: window, in flight, queued, completions, failures by kind, tokens. */
  stats(): BackendStats[] {
    const now = Date.now();
    return this.eps.map((e) => ({
      model: this.opts.model,
      url: e.url,
      window: Math.round(e.window * 10) / 10,
      inFlight: e.inFlight,
      queued: e.queue.length,
      completed: e.completed,
      errors: e.errors,
      failures: { ...e.failures },
      lastError: e.lastError,
      tokens: e.tokens,
      tokensPerSecond: e.firstCompletedAt && now > e.firstCompletedAt ? Math.round((e.tokens * 1000) / (now - e.firstCompletedAt)) : 0,
      down: now < e.downUntil,
    }));
  }

  complete(req: LlmRequest): Promise<CompletionResult> {
    return new Promise((resolve, reject) => {
      const p: Pending = { req, deadline: Date.now() + this.opts.deadlineMs, attempts: 0, failures: 0, lastError: '', resolve, reject };
      this.enqueue(p);
    });
  }

  private pumpScheduled = false;

  /** Requests made in one synchronous burst are dispatched together, so they can share prompt arrays. */
  private enqueue(p: Pending): void {
    chooseEndpoint(this.eps, p, this.opts.affinity, this.rr++).queue.push(p);
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    for (const e of this.eps) {
      while (e.queue.length > 0 && e.hasRoom) {
        const room = Math.floor(e.window) - e.inFlight;
        const max = Math.max(1, Math.min(room, e.acceptsArrays ? this.opts.batchPrompts : 1));
        const first = e.queue.shift()!;
        const group = [first];
        // Only prompts with the same generation parameters share a request; the rest keep their queue order.
        for (let i = 0; i < e.queue.length && group.length < max; ) {
          if (sameParameters(e.queue[i]!.req, first.req)) group.push(e.queue.splice(i, 1)[0]!);
          else i++;
        }
        void this.send(e, group);
      }
      if (e.queue.length > 0 && Date.now() < e.downUntil) {
        // Re-check once the endpoint's backoff has passed; no polling loop. Not unref'd: queued records are work
        // the process still has to do, and an unref'd timer would let it exit with their callers never answered.
        setTimeout(() => this.pump(), e.downUntil - Date.now());
      }
    }
  }

  /** One HTTP request for a group of records: a string prompt for one, a prompt array for several. */
  private async send(e: EndpointState, group: Pending[]): Promise<void> {
    e.inFlight += group.length;
    for (const p of group) p.attempts++;
    const req = group[0]!.req;
    const deadline = Math.min(...group.map((p) => p.deadline));
    const timeoutMs = Math.max(1, Math.min(this.opts.timeoutMs, deadline - Date.now()));
    const started = performance.now();
    let outcome: { ok: CompletionResult[] } | { retry: string; congestion: boolean; down: boolean } | { fatal: string; status?: number };
    let failure = '';
    try {
      const res = await fetch(`${e.url}/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.authHeaders() },
        body: JSON.stringify({
          ...this.opts.extraBody,
          model: this.opts.model,
          prompt: group.length === 1 ? req.prompt : group.map((p) => p.req.prompt),
          max_tokens: req.maxTokens,
          temperature: req.temperature,
          ...(req.stop ? { stop: req.stop } : {}),
        }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (res.ok) {
        outcome = completionResults(text, group, performance.now() - started);
      } else if (RETRIABLE.has(res.status)) {
        failure = res.status === 429 ? 'http429' : res.status >= 500 ? 'http5xx' : 'http4xx';
        outcome = { retry: `HTTP ${res.status} from ${e.url}: ${text.slice(0, 200)}`, congestion: CONGESTION.has(res.status), down: false };
      } else {
        failure = res.status >= 500 ? 'http5xx' : 'http4xx';
        const hint = res.status === 401 || res.status === 403 ? ` (${KEY_HINT})` : '';
        outcome = { fatal: `completion request rejected by ${e.url}: HTTP ${res.status}${hint}: ${text.slice(0, 300)}`, status: res.status };
      }
    } catch (err) {
      const timeout = (err as Error).name === 'TimeoutError';
      failure = timeout ? 'timeout' : 'connection';
      outcome = { retry: timeout ? `timed out after ${timeoutMs} ms at ${e.url}` : `${connectionError(err)} at ${e.url}`, congestion: timeout, down: !timeout };
    }
    e.inFlight -= group.length;
    if ('fatal' in outcome && group.length > 1 && outcome.status !== undefined && outcome.status < 500) {
      // A server that refuses prompt arrays: stop batching for it and send these again one by one, uncounted.
      e.acceptsArrays = false;
      for (const p of group) {
        p.attempts--;
        e.queue.unshift(p);
      }
    } else if ('ok' in outcome) {
      outcome.ok.forEach((r, i) => {
        e.onSuccess(r);
        group[i]!.resolve(r);
      });
    } else if ('fatal' in outcome) {
      e.onFailure(failure, group.length, outcome.fatal);
      for (const p of group) p.reject(new CompletionError(outcome.fatal, p.attempts, outcome.status));
    } else {
      e.onFailure(failure, group.length, outcome.retry);
      if (outcome.congestion) e.onCongestion();
      await Promise.all(group.map((p) => this.retryLater(e, p, (outcome as { retry: string; down: boolean }).retry, (outcome as { down: boolean }).down)));
    }
    this.pump();
  }

  /** Per-record results from a response; batched usage is shared out by each choice's share of the text. */
  private async retryLater(e: EndpointState, p: Pending, reason: string, down: boolean): Promise<void> {
    const wait = Math.random() * Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (p.attempts - 1));
    if (down) {
      e.downUntil = Math.max(e.downUntil, Date.now() + wait);
      p.refusedBy = e;
    } else {
      p.failures++;
      p.refusedBy = undefined;
    }
    p.lastError = reason;
    if (p.failures >= this.opts.maxAttempts) {
      p.reject(new CompletionError(`completion failed after ${p.attempts} attempts: ${p.lastError}`, p.attempts));
    } else if (Date.now() + wait >= p.deadline) {
      p.reject(new CompletionError(`completion failed after ${p.attempts} attempts within the ${this.opts.deadlineMs} ms deadline: ${p.lastError}`, p.attempts));
    } else {
      await sleep(wait);
      this.enqueue(p);
    }
  }

  /**
   * Which endpoints answer at all (any HTTP status counts: the server is there), each within timeoutMs. A job checks
   * this before it starts, so a wrong URL fails at once instead of after every record's outage budget.
   */
  async probe(timeoutMs = 5000): Promise<{ url: string; reachable: boolean; status?: number; error?: string }[]> {
    return Promise.all(
      this.eps.map(async (e) => {
        try {
          const res = await fetch(`${e.url}/models`, { headers: this.authHeaders(), signal: AbortSignal.timeout(timeoutMs) });
          await res.body?.cancel();
          return { url: e.url, reachable: true, status: res.status, ...(res.status === 401 || res.status === 403 ? { error: `HTTP ${res.status}: ${KEY_HINT}` } : {}) };
        } catch (err) {
          return { url: e.url, reachable: false, error: connectionError(err) };
        }
      }),
    );
  }

  private authHeaders(): Record<string, string> {
    return this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
  }

  /**
   * Token count from the first endpoint that offers /tokenize; undefined when every endpoint that answers has none.
   * While no endpoint answers at all (an outage), it waits and asks again within the record deadline, like complete().
   */
  async countTokens(text: string): Promise<number | undefined> {
    const deadline = Date.now() + this.opts.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      let unreachable = '';
      for (const e of this.eps) {
        let res: Response;
        try {
          res = await fetch(`${new URL(e.url).origin}/tokenize`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...this.authHeaders() },
            body: JSON.stringify({ model: this.opts.model, prompt: text, content: text }),
            signal: AbortSignal.timeout(this.opts.timeoutMs),
          });
        } catch (err) {
          unreachable = `${connectionError(err)} at ${e.url}`;
          continue;
        }
        if (!res.ok) {
          await res.body?.cancel();
          if (res.status === 401 || res.status === 403) throw new CompletionError(`token count refused by ${e.url}: HTTP ${res.status} (${KEY_HINT})`, attempt, res.status);
          if (RETRIABLE.has(res.status)) unreachable = `HTTP ${res.status} from ${e.url}/tokenize`;
          continue;
        }
        const json = (await res.json()) as { count?: number; tokens?: unknown[] };
        if (typeof json.count === 'number') return json.count;
        if (Array.isArray(json.tokens)) return json.tokens.length;
      }
      if (!unreachable) return undefined;
      const wait = Math.random() * Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (attempt - 1));
      if (Date.now() + wait >= deadline) throw new CompletionError(`token count failed within the ${this.opts.deadlineMs} ms deadline: ${unreachable}`, attempt);
      await sleep(wait);
    }
  }
}
