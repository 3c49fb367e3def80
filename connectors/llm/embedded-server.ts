import Fastify, { type FastifyInstance } from 'fastify';
import type { EmbeddedSynthesizer } from './embedded-llama.ts';

interface CompletionBody {
  model?: string;
  prompt?: string | string[];
  max_tokens?: number;
  temperature?: number;
  stop?: string | string[];
  grammar?: string;
  repeat_penalty?: number;
}

/**
 * Serves an embedded synthesizer behind the OpenAI completions API (plus llama.cpp-style /tokenize and `grammar`),
 * so the pipeline and `ipt augment` talk to it exactly as to vLLM or a llama.cpp server. Requests beyond the
 * parallel sequences wait in a bounded queue; past it the server answers 429 so clients back off.
 */
export async function startEmbeddedServer(synth: EmbeddedSynthesizer, opts: { port?: number; host?: string; modelName?: string; maxQueue?: number } = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true });
  const modelName = opts.modelName ?? 'embedded';
  const maxQueue = opts.maxQueue ?? 4096;
  let waiting = 0;

  app.get('/health', async () => ({ status: 'ok', parallel: synth.parallel, busy: synth.busy, waiting }));
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: modelName, object: 'model', max_model_len: synth.contextSize }] }));
  app.post('/tokenize', async (req) => {
    const body = req.body as { prompt?: string; content?: string };
    const tokens = synth.tokenize(body.prompt ?? body.content ?? '');
    return { count: tokens.length, max_model_len: synth.contextSize, tokens };
  });
  app.post('/v1/completions', async (req, reply) => {
    const body = req.body as CompletionBody;
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : Array.isArray(body.prompt) && body.prompt.every((p) => typeof p === 'string') ? body.prompt : undefined;
    if (!prompts || prompts.length === 0) return reply.code(400).send({ error: { message: 'prompt must be a string or an array of strings', type: 'invalid_request_error' } });
    const maxTokens = body.max_tokens ?? 16;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) return reply.code(400).send({ error: { message: 'max_tokens must be a positive integer', type: 'invalid_request_error' } });
    if (waiting + prompts.length > maxQueue) return reply.code(429).send({ error: { message: `queue full (${waiting} waiting)`, type: 'rate_limit_error' } });
    const stop = body.stop === undefined ? undefined : Array.isArray(body.stop) ? body.stop : [body.stop];
    const abort = new AbortController();
    // The response's close before it finished means the client went away: stop decoding for it.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    waiting += prompts.length;
    try {
      const results = await Promise.all(
        prompts.map((prompt) => synth.complete({ prompt, maxTokens, temperature: body.temperature ?? 1, grammar: body.grammar, stop, repeatPenalty: body.repeat_penalty, signal: abort.signal }).finally(() => waiting--)),
      );
      const usage = results.reduce((u, r) => ({ prompt_tokens: u.prompt_tokens + r.promptTokens, completion_tokens: u.completion_tokens + r.completionTokens }), { prompt_tokens: 0, completion_tokens: 0 });
      return {
        id: `cmpl-${Date.now().toString(36)}`,
        object: 'text_completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model ?? modelName,
        choices: results.map((r, index) => ({ index, text: r.text, finish_reason: r.finishReason, logprobs: null })),
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      };
    } catch (err) {
      if (err instanceof RangeError) return reply.code(400).send({ error: { message: err.message, type: 'invalid_request_error' } });
      throw err;
    }
  });
  await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return { app, url: `http://${opts.host ?? '127.0.0.1'}:${port}/v1` };
}
