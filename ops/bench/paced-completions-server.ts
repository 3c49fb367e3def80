import Fastify, { type FastifyInstance } from 'fastify';
import { cannedPairs, RecordedCompletionsServer } from '../recorded-llm/recorded-completions-server.ts';

/**
 * An OpenAI-compatible completions endpoint for the scale-out benchmark (it runs no model): every request is answered
 * latencyMs after it arrives, with the made-up pairs of the recorded-response server, however many are in flight. The
 * backend is then never the limit, so a run's rate is set by its clients; the peak in flight shows how many requests
 * they kept out at once.
 */
export class PacedCompletionsServer {
  private app: FastifyInstance | undefined;
  inFlight = 0;
  peakInFlight = 0;
  served = 0;
  /** When (epoch ms) the first request since the last resetCounts() arrived. */
  firstAt: number | undefined;
  url = '';

  constructor(readonly latencyMs: number) {}

  async start(port = 0): Promise<string> {
    const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true, keepAliveTimeout: 60_000 });
    app.post('/v1/completions', async (req) => {
      const body = req.body as { prompt?: unknown; model?: unknown };
      const prompt = typeof body.prompt === 'string' ? body.prompt : '';
      this.firstAt ??= Date.now();
      this.inFlight++;
      if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
      await new Promise((r) => setTimeout(r, this.latencyMs));
      this.inFlight--;
      this.served++;
      const text = cannedPairs(RecordedCompletionsServer.lastContext(prompt) ?? '');
      return { id: 'cmpl-paced', object: 'text_completion', model: body.model, choices: [{ index: 0, text, finish_reason: 'stop' }], usage: { prompt_tokens: prompt.length, completion_tokens: text.length, total_tokens: prompt.length + text.length } };
    });
    app.get('/v1/models', async () => ({ object: 'list', data: [{ id: 'paced', object: 'model' }] }));
    await app.listen({ port, host: '127.0.0.1' });
    const addr = app.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1`;
    this.app = app;
    return this.url;
  }

  /** Counts from now on (each measured side starts from zero). */
  resetCounts(): void {
    this.peakInFlight = this.inFlight;
    this.served = 0;
    this.firstAt = undefined;
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
