import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Token } from 'node-llama-cpp';
import type { EmbeddedSynthesizer } from './embedded-llama.ts';
import { bearerCheck } from '../http/bearer.ts';
import { describeValidationErrors } from '../http/validation-errors.ts';

interface CompletionBody {
  model?: string;
  prompt: string | string[];
  max_tokens?: number;
  temperature?: number;
  stop?: string | string[];
  grammar?: string;
  repeat_penalty?: number;
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * The fields this server acts on, typed: a value of the wrong type used to reach llama.cpp, where a string
 * temperature or repeat_penalty threw inside the decode loop and took the whole process down. Other fields that
 * OpenAI-compatible clients send (top_p, user, vLLM's guided_* …) are accepted and ignored, as before.
 */
const completionBody = {
  type: 'object',
  required: ['prompt'],
  properties: {
    model: { type: 'string', maxLength: 1024 },
    prompt: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }] },
    max_tokens: { type: 'integer', minimum: 1, maximum: INT32_MAX },
    temperature: { type: 'number', minimum: 0 },
    stop: { anyOf: [{ type: 'string' }, { type: 'array', maxItems: 64, items: { type: 'string' } }] },
    // The synthesizer compiles and keeps every distinct grammar; the pair grammars are a few KB.
    grammar: { type: 'string', minLength: 1, maxLength: 256 * 1024 },
    repeat_penalty: { type: 'number', exclusiveMinimum: 0 },
    // Answers are neither streamed nor multiple: a client asking for either is told so rather than misled.
    stream: { const: false },
    n: { const: 1 },
  },
} as const;

const tokenizeBody = {
  type: 'object',
  properties: { prompt: { type: 'string' }, content: { type: 'string' } },
} as const;

const invalid = (reply: FastifyReply, message: string) => reply.code(400).send({ error: { message, type: 'invalid_request_error' } });

/**
 * The most bytes of text one token of the model stands for, plus a margin; undefined when the vocabulary cannot be
 * read. A prompt of B bytes has at least B / this tokens, so a prompt far over the context is refused from its
 * length alone: tokenizing 60 MiB took 16 s, during which the server answered nothing.
 */
function longestTokenBytes(synth: EmbeddedSynthesizer): number | undefined {
  const vocab = (synth.model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  // The vocabulary's own length bounds the ids: llama.cpp aborts the process on an id past its end.
  if (!Array.isArray(vocab) || vocab.length === 0) return undefined;
  let longest = 1;
  for (let id = 0; id < vocab.length; id++) longest = Math.max(longest, Buffer.byteLength(synth.model.detokenize([id as Token])));
  return longest + 4;
}

export interface EmbeddedServerOptions {
  port?: number;
  /** Loopback unless given. */
  host?: string;
  modelName?: string;
  maxQueue?: number;
  /** When set, every route but /health requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Where failures of the server itself (5xx) are reported. */
  onError?: (err: Error) => void;
}

/**
 * Serves an embedded synthesizer behind the OpenAI completions API (plus llama.cpp-style /tokenize and `grammar`),
 * so the pipeline and `ipt augment` talk to it exactly as to vLLM or a llama.cpp server. Requests beyond the
 * parallel sequences wait in a bounded queue; past it the server answers 429 so clients back off.
 */
export async function startEmbeddedServer(synth: EmbeddedSynthesizer, opts: EmbeddedServerOptions = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024 * 1024,
    forceCloseConnections: true,
    // Types are checked, not coerced: "0.5" is not a temperature.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    schemaErrorFormatter: (errors, dataVar) => {
      // prompt and stop are the only alternatives; ajv's first error would name one branch ("must be string").
      const alt = errors.find((e) => e.keyword === 'anyOf');
      if (alt) return new Error(`${dataVar}: "${alt.instancePath.slice(1)}" must be a string or an array of strings`);
      return describeValidationErrors(errors, dataVar);
    },
  });
  const modelName = opts.modelName ?? 'embedded';
  const maxQueue = opts.maxQueue ?? 4096;
  const tokenBytes = longestTokenBytes(synth);
  let waiting = 0;

  if (opts.apiKey !== undefined) {
    const authorized = bearerCheck(opts.apiKey);
    // Before the body is read, so an unauthenticated client cannot make the server buffer 64 MiB bodies.
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.routeOptions.url === '/health' || authorized(req.headers.authorization)) return;
      if ((req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined) reply.header('connection', 'close');
      return reply.code(401).send({ error: { message: 'missing or wrong API key (Authorization: Bearer …)', type: 'invalid_request_error' } });
    });
  }
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) opts.onError?.(err);
    void reply.code(status).send({ error: { message: err.message, type: status >= 500 ? 'server_error' : 'invalid_request_error' } });
  });
  // The default answer repeats the URL, query string included, where a client may have put its key.
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { message: `no route ${req.method} ${req.url.split('?')[0]}`, type: 'invalid_request_error' } }));

  app.get('/health', async () => ({ status: 'ok', parallel: synth.parallel, busy: synth.busy, waiting }));
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: modelName, object: 'model', max_model_len: synth.contextSize }] }));
  app.post('/tokenize', { schema: { body: tokenizeBody } }, async (req) => {
    const body = req.body as { prompt?: string; content?: string };
    const tokens = synth.tokenize(body.prompt ?? body.content ?? '');
    return { count: tokens.length, max_model_len: synth.contextSize, tokens };
  });
  app.post('/v1/completions', { schema: { body: completionBody } }, async (req, reply) => {
    const body = req.body as CompletionBody;
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
    const maxTokens = body.max_tokens ?? 16;
    if (tokenBytes !== undefined) {
      for (const [i, prompt] of prompts.entries()) {
        const bytes = Buffer.byteLength(prompt);
        const least = Math.ceil(bytes / tokenBytes);
        if (least + maxTokens > synth.contextSize) {
          return invalid(reply, `prompt${prompts.length > 1 ? ` ${i}` : ''} of ${bytes} bytes is at least ${least} tokens; with max_tokens ${maxTokens} it exceeds the context of ${synth.contextSize} tokens`);
        }
      }
    }
    if (prompts.length > maxQueue) return invalid(reply, `${prompts.length} prompts in one request; at most ${maxQueue}`);
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
      // The answer is an error whatever the other prompts of the request produce: stop decoding them.
      abort.abort();
      if (err instanceof RangeError) return invalid(reply, err.message);
      // A grammar llama.cpp cannot parse is the client's mistake; it is parsed again only on this failure path.
      if (body.grammar !== undefined && !(await grammarParses(synth, body.grammar))) return invalid(reply, 'grammar: not a valid GBNF grammar');
      throw err;
    }
  });
  await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host ?? '127.0.0.1';
  return { app, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1` };
}

async function grammarParses(synth: EmbeddedSynthesizer, gbnf: string): Promise<boolean> {
  try {
    await synth.llama.createGrammar({ grammar: gbnf });
    return true;
  } catch {
    return false;
  }
}
