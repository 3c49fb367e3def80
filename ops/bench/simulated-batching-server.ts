import Fastify, { type FastifyInstance } from 'fastify';

/**
 * A simulated continuous-batching inference server, part of the synthesis benchmark (it runs no model): decoding
 * steps come at a fixed cadence of maxBatch / tokensPerSecond seconds, and each step gives one token to each of up
 * to maxBatch active requests; the rest wait in its queue, as in vLLM. A client that keeps it saturated gets
 * tokensPerSecond; one that leaves the batch short gets proportionally less.
 */
export class SimulatedBatchingServer {
  private app: FastifyInstance | undefined;
  private readonly active: { left: number; total: number; done: () => void }[] = [];
  private readonly queue: { left: number; total: number; done: () => void }[] = [];
  private stepsDone = 0;
  private t0 = 0;
  private timer: NodeJS.Timeout | undefined;
  tokensServed = 0;
  httpRequests = 0;
  url = '';

  constructor(readonly opts: { tokensPerSecond: number; maxBatch: number }) {}

  private get stepSeconds(): number {
    return this.opts.maxBatch / this.opts.tokensPerSecond;
  }

  private tick = () => {
    const due = Math.floor((performance.now() - this.t0) / 1000 / this.stepSeconds);
    for (; this.stepsDone < due; this.stepsDone++) {
      while (this.active.length < this.opts.maxBatch && this.queue.length > 0) this.active.push(this.queue.shift()!);
      for (let i = this.active.length - 1; i >= 0; i--) {
        const r = this.active[i]!;
        r.left--;
        this.tokensServed++;
        if (r.left === 0) {
          this.active.splice(i, 1);
          r.done();
        }
      }
    }
    this.timer = setTimeout(this.tick, 1);
  };

  async start(): Promise<string> {
    return this.startOn(0);
  }

  async startOn(port: number): Promise<string> {
    const app = Fastify({ logger: false, forceCloseConnections: true, keepAliveTimeout: 60_000 });
    app.post('/v1/completions', async (req) => {
      const body = req.body as { max_tokens?: number; prompt?: string | string[] };
      this.httpRequests++;
      const total = Math.max(1, body.max_tokens ?? 16);
      const n = Array.isArray(body.prompt) ? body.prompt.length : 1;
      // Each prompt of an array is its own sequence in the batch, as on vLLM.
      await Promise.all(Array.from({ length: n }, () => new Promise<void>((done) => this.queue.push({ left: total, total, done }))));
      const choices = Array.from({ length: n }, (_, index) => ({ index, text: ' tok'.repeat(total), finish_reason: 'length' }));
      return { object: 'text_completion', choices, usage: { prompt_tokens: n, completion_tokens: n * total, total_tokens: n * (total + 1) } };
    });
    await app.listen({ port, host: '127.0.0.1' });
    const addr = app.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1`;
    this.app = app;
    this.t0 = performance.now();
    this.tick();
    return this.url;
  }

  /** Restart the step clock, so that capacity is counted from the benchmark's first request. */
  resetClock(): void {
    this.t0 = performance.now();
    this.stepsDone = 0;
    this.tokensServed = 0;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.app?.close();
  }
}
