import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../fixtures/free-port.ts';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { guidedFields } from '../../connectors/llm/pair-grammar.ts';
import { formatSynthesizerInput, parseSynthesizerOutput } from 'instruct-pt';

// The small model is not trained on the pair format; tight bounds let it close pairs within a short budget.
const TIGHT = { maxPairs: 2, maxLine: 50, maxLines: 1 };
const TEXTS = [
  'Photosynthesis takes place in chloroplasts and releases oxygen.',
  'The Moon orbits Earth roughly every 27 days.',
  'Sound travels faster in water than in air.',
  'Insulin is a hormone made by the pancreas.',
];

let synth: EmbeddedSynthesizer;
let server: Awaited<ReturnType<typeof startEmbeddedServer>>;
beforeAll(async () => {
  synth = await EmbeddedSynthesizer.load({ modelPath: inject('smallModel'), parallel: 4, contextSize: 1024 });
  server = await startEmbeddedServer(synth, { modelName: 'smollm2' });
});
afterAll(async () => {
  await server.app.close();
  await synth.dispose();
});

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const origin = new URL(server.url).origin;
  const res = await fetch(`${path.startsWith('/v1') ? origin : origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

describe('the embedded llama.cpp synthesizer behind the OpenAI completions API (real model)', () => {
  it('completes a prompt and a prompt array, with usage from the model’s own tokenizer', async () => {
    const prompts = TEXTS.slice(0, 2).map(formatSynthesizerInput);
    const one = await post('/v1/completions', { model: 'smollm2', prompt: prompts[0], max_tokens: 12, temperature: 0 });
    expect(one.status).toBe(200);
    expect(one.json.choices).toHaveLength(1);
    expect(one.json.choices[0].text.length).toBeGreaterThan(0);
    expect(one.json.usage.prompt_tokens).toBe(synth.tokenize(prompts[0]!).length);
    expect(one.json.usage.completion_tokens).toBeLessThanOrEqual(12);
    const batch = await post('/v1/completions', { model: 'smollm2', prompt: prompts, max_tokens: 12, temperature: 0 });
    expect(batch.json.choices.map((c: { index: number }) => c.index)).toEqual([0, 1]);
    // Deterministic at temperature 0, alone or batched.
    expect(batch.json.choices[0].text).toBe(one.json.choices[0].text);
  });

  it('counts tokens on /tokenize (vLLM and llama.cpp request shapes)', async () => {
    const text = formatSynthesizerInput(TEXTS[0]!);
    expect((await post('/tokenize', { model: 'smollm2', prompt: text })).json.count).toBe(synth.tokenize(text).length);
    expect((await post('/tokenize', { content: text })).json.tokens).toHaveLength(synth.tokenize(text).length);
    const client = new SynthesisPool({ endpoints: [server.url], model: 'smollm2' });
    expect(await client.countTokens(text)).toBe(synth.tokenize(text).length);
  });

  it('with an API key: the pool sends IPT_LLM_API_KEY, and a missing key fails the start-up check naming the variable', async () => {
    const keyed = await startEmbeddedServer(synth, { modelName: 'smollm2', apiKey: 'k-0123456789abcdef' });
    try {
      const { checkLlmEndpoints } = await import('../../connectors/llm/preflight.ts');
      const without = new SynthesisPool({ endpoints: [keyed.url], model: 'smollm2', apiKey: '' });
      await expect(checkLlmEndpoints(without, { needTokenize: true, setting: '--llm-url' })).rejects.toThrow(/HTTP 401: the server wants an API key: set IPT_LLM_API_KEY/);
      await expect(without.complete({ prompt: 'x', maxTokens: 1, temperature: 0 })).rejects.toThrow(/HTTP 401 \(the server wants an API key: set IPT_LLM_API_KEY/);
      process.env.IPT_LLM_API_KEY = 'k-0123456789abcdef';
      const withKey = new SynthesisPool({ endpoints: [keyed.url], model: 'smollm2' });
      expect(await checkLlmEndpoints(withKey, { needTokenize: true, setting: '--llm-url' })).toEqual([]);
      expect((await withKey.complete({ prompt: formatSynthesizerInput(TEXTS[0]!), maxTokens: 4, temperature: 0 })).text.length).toBeGreaterThan(0);
    } finally {
      delete process.env.IPT_LLM_API_KEY;
      await keyed.app.close();
    }
  });

  it('rejects invalid requests with 400, which the client does not retry', async () => {
    expect((await post('/v1/completions', { prompt: 5, max_tokens: 3 })).status).toBe(400);
    const client = new SynthesisPool({ endpoints: [server.url], model: 'smollm2', maxAttempts: 4, backoffMs: 10 });
    const tooLong = 'word '.repeat(2000);
    await expect(client.complete({ prompt: tooLong, maxTokens: 10, temperature: 0 })).rejects.toMatchObject({ attempts: 1, status: 400 });
  });

  it('guided decoding (GBNF) turns unparseable output into parseable pairs', async () => {
    const rate = async (extra: Record<string, unknown>) => {
      const client = new SynthesisPool({ endpoints: [server.url], model: 'smollm2', extraBody: extra });
      const outs = await Promise.all(TEXTS.map((t) => client.complete({ prompt: formatSynthesizerInput(t), maxTokens: 80, temperature: 0 })));
      return outs.filter((o) => parseSynthesizerOutput(o.text).length > 0).length / outs.length;
    };
    const free = await rate({ repeat_penalty: 1.3 });
    const guided = await rate({ repeat_penalty: 1.3, ...guidedFields('gbnf', TIGHT) });
    expect(guided).toBe(1);
    expect(free).toBeLessThan(guided);
  });
});

describe('client failure handling against a real server', () => {
  it('backs off while the server is down and resumes when it comes back, losing no request', async () => {
    const port = await freePort();
    // Full-jitter waits can be short: 40 tries of up to 300 ms cannot all fall inside the 1.2 s outage (p < 1e-20).
    const client = new SynthesisPool({ endpoints: [`http://127.0.0.1:${port}/v1`], model: 'smollm2', maxAttempts: 41, backoffMs: 100, maxBackoffMs: 300, timeoutMs: 30_000 });
    const started = Date.now();
    const pending = Promise.all(TEXTS.map((t) => client.complete({ prompt: formatSynthesizerInput(t), maxTokens: 4, temperature: 0 })));
    await sleep(1200);
    const late = await startEmbeddedServer(synth, { port });
    try {
      const results = await pending;
      expect(results).toHaveLength(TEXTS.length);
      expect(results.every((r) => r.attempts > 1)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
    } finally {
      await late.app.close();
    }
  });

  it('reports a prompt whose server stays down past its deadline, with the reason', async () => {
    const port = await freePort();
    // A refused connection spends the record's deadline, not its attempts: an outage costs time, not texts.
    const client = new SynthesisPool({ endpoints: [`http://127.0.0.1:${port}/v1`], model: 'smollm2', maxAttempts: 3, backoffMs: 20, deadlineMs: 1000 });
    await expect(client.complete({ prompt: 'x', maxTokens: 2, temperature: 0 })).rejects.toThrow(/within the 1000 ms deadline: .*(ECONNREFUSED|fetch failed)/);
  });
});

describe('the pipeline with the embedded synthesizer (real model)', () => {
  it('runs two rounds over Kafka with guided decoding: every text converted, pairs parsed, metrics in ClickHouse', async () => {
    const { isolated, runOnStack, tmp } = await import('./pipeline-harness.ts');
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const iso = isolated();
    const input = join(tmp(), 'real.jsonl');
    writeFileSync(input, TEXTS.map((text, i) => JSON.stringify({ id: `real-${i}`, text })).join('\n') + '\n');
    const s = await runOnStack(
      iso,
      input,
      { 'llm-url': server.url, model: 'smollm2', rounds: '2', 'length-estimate': 'tokens', 'max-model-len': '1024', 'max-new-tokens': '96', concurrency: '4' },
      { timeoutMs: 300_000 },
      { ...guidedFields('gbnf', TIGHT), repeat_penalty: 1.3 },
    );
    expect(s.augmented).toBe(4);
    expect(s.perRound.map((r) => r.texts)).toEqual([2, 2]);
    expect(s.perRound[1]!.fewShot).toBe(2);
    expect(s.pairs).toBeGreaterThan(0);
    expect(s.metricRows.synthesis).toBe(4);
  });
});
