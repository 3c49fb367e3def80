import { SimulatedBatchingServer } from './simulated-batching-server.ts';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { guidedFields } from '../../connectors/llm/pair-grammar.ts';
import { formatSynthesizerInput } from '../../processors/templating/synthesizer-format.ts';
import { parseSynthesizerOutput } from '../../processors/round-feedback/parse-output.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { median, round } from './stats.ts';

type Log = (l: string) => void;

/** Achieved / capacity against the simulated continuous-batching server. */
export async function simulated(log: Log, runs: number) {
  const capacity = 20_000;
  const maxBatch = 64;
  const requests = 10_000;
  const tokens = 40;
  const ratios: number[] = [];
  for (let r = 0; r < runs; r++) {
    const sim = new SimulatedBatchingServer({ tokensPerSecond: capacity, maxBatch });
    const url = await sim.start();
    const pool = new SynthesisPool({ endpoints: [url], model: 'sim', initialWindow: 8 });
    sim.resetClock();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: requests }, () => pool.complete({ prompt: 'p', maxTokens: tokens, temperature: 0 })));
    const seconds = (performance.now() - t0) / 1000;
    ratios.push((requests * tokens) / seconds / capacity);
    log(`bench synthesis: simulated run ${r + 1}: ${Math.round((requests * tokens) / seconds)} tok/s of ${capacity} (window ${pool.stats()[0]!.window})`);
    await sim.stop();
  }
  return { capacityTokensPerSec: capacity, maxBatch, requests, tokensPerRequest: tokens, ratio: round(median(ratios)), runs: ratios.map((x) => round(x)) };
}

const shortTexts = (n: number) => sampleTexts(n, { runId: 'bench', bytes: 300 }).map((t) => t.text);

/** The pipeline's synthesis path (pool → HTTP → embedded server) vs direct batched generation in node-llama-cpp. */
async function llamacpp(synth: EmbeddedSynthesizer, log: Log) {
  const prompts = shortTexts(16).map(formatSynthesizerInput);
  const maxTokens = 48;
  const direct = async () => {
    const t0 = performance.now();
    const outs = await Promise.all(prompts.map((prompt) => synth.complete({ prompt, maxTokens, temperature: 0 })));
    return outs.reduce((s, o) => s + o.completionTokens, 0) / ((performance.now() - t0) / 1000);
  };
  const { app, url } = await startEmbeddedServer(synth);
  const pool = new SynthesisPool({ endpoints: [url], model: 'embedded', initialWindow: synth.parallel });
  const viaPipeline = async () => {
    const t0 = performance.now();
    const outs = await Promise.all(prompts.map((prompt) => pool.complete({ prompt, maxTokens, temperature: 0 })));
    return outs.reduce((s, o) => s + (o.completionTokens ?? 0), 0) / ((performance.now() - t0) / 1000);
  };
  const d: number[] = [];
  const p: number[] = [];
  for (let r = 0; r < 3; r++) {
    // Fresh caches for both sides: a repeated prompt would otherwise be served from the KV cache.
    await synth.clearCaches();
    d.push(await direct());
    await synth.clearCaches();
    p.push(await viaPipeline());
    log(`bench synthesis: llamacpp run ${r + 1}: direct ${Math.round(d[r]!)} tok/s, pipeline path ${Math.round(p[r]!)} tok/s`);
  }
  await app.close();
  return { directTokensPerSec: Math.round(median(d)), pipelineTokensPerSec: Math.round(median(p)), ratio: round(median(p) / median(d)), gpu: synth.gpu || 'none' };
}

/**
 * Two endpoints with prefix caches; round 1's prompts extend round 0's (the few-shot history of docs/method.md §3). With
 * affinity each collection's round-1 prompt lands where its round-0 prompt's KV cache is.
 */
async function prefixAffinity(modelPath: string, log: Log) {
  const collections = 8;
  const texts = sampleTexts(collections * 2, { runId: 'affinity', bytes: 1200 }).map((t) => t.text);
  // Round 1 takes the collections in another order than round 0 (as the streaming pool hands them out), the same
  // order for both modes, so that neither gains from the accident of identical scheduling.
  const order = [5, 2, 7, 0, 3, 6, 1, 4];
  const result: Record<string, number> = {};
  const reuse: Record<string, number> = {};
  for (const mode of ['round-robin', 'affinity'] as const) {
    // One thread each: the two endpoints share this machine's two cores in both modes. Each has a sequence (a KV
    // cache) per collection, so a prompt that reaches the endpoint holding its history can always reuse it.
    const synths = await Promise.all([0, 1].map(() => EmbeddedSynthesizer.load({ modelPath, parallel: collections, contextSize: 1024, threads: 1 })));
    const servers = await Promise.all(synths.map((s) => startEmbeddedServer(s)));
    const pool = new SynthesisPool({ endpoints: servers.map((s) => s.url), model: 'embedded', affinity: mode === 'affinity', initialWindow: collections });
    const round0 = texts.slice(0, collections).map(formatSynthesizerInput);
    const outs = await Promise.all(round0.map((prompt, i) => pool.complete({ prompt, maxTokens: 16, temperature: 0, affinityKey: `c${i}` })));
    const before = synths.map((x) => [x.prefixTokensReused, x.promptTokensTotal] as const);
    const round1 = order.map((i) => ({ i, prompt: `${round0[i]}${outs[i]!.text}</s>${formatSynthesizerInput(texts[collections + i]!)}` }));
    const t0 = performance.now();
    await Promise.all(round1.map(({ i, prompt }) => pool.complete({ prompt, maxTokens: 16, temperature: 0, affinityKey: `c${i}` })));
    result[mode] = collections / ((performance.now() - t0) / 1000);
    const reused = synths.reduce((s, x, k) => s + x.prefixTokensReused - before[k]![0], 0);
    const total = synths.reduce((s, x, k) => s + x.promptTokensTotal - before[k]![1], 0);
    reuse[mode] = reused / total;
    log(`bench synthesis: prefix ${mode}: ${result[mode]!.toFixed(2)} prompts/s, round-1 prompt tokens from cache ${(100 * reuse[mode]!).toFixed(0)}%, per endpoint ${pool.stats().map((e) => e.completed).join('/')}`);
    for (const s of servers) await s.app.close();
    for (const s of synths) await s.dispose();
  }
  return {
    roundRobinPromptsPerSec: round(result['round-robin']!),
    affinityPromptsPerSec: round(result.affinity!),
    ratio: round(result.affinity! / result['round-robin']!),
    cacheReuse: { roundRobin: round(reuse['round-robin']!), affinity: round(reuse.affinity!) },
  };
}

/** Parse rate on the small model with and without guided decoding (tight bounds: it was not trained on the format). */
async function parseRate(synth: EmbeddedSynthesizer) {
  const prompts = shortTexts(12).map(formatSynthesizerInput);
  const { app, url } = await startEmbeddedServer(synth);
  const rate = async (extra: Record<string, unknown>) => {
    const pool = new SynthesisPool({ endpoints: [url], model: 'embedded', extraBody: { repeat_penalty: 1.3, ...extra } });
    const outs = await Promise.all(prompts.map((prompt) => pool.complete({ prompt, maxTokens: 128, temperature: 0 })));
    return round(outs.filter((o) => parseSynthesizerOutput(o.text).length > 0).length / outs.length);
  };
  const result = { prompts: prompts.length, unguided: await rate({}), guided: await rate(guidedFields('gbnf', { maxPairs: 3, maxLine: 60, maxLines: 2 })) };
  await app.close();
  return result;
}

export async function synthesisBench(opts: { modelPath: string; log: Log; runs: number }) {
  const sim = await simulated(opts.log, opts.runs);
  const synth = await EmbeddedSynthesizer.load({ modelPath: opts.modelPath, parallel: 4, contextSize: 1024 });
  const llama = await llamacpp(synth, opts.log);
  const parse = await parseRate(synth);
  await synth.dispose();
  const affinity = await prefixAffinity(opts.modelPath, opts.log);
  return { bench: 'synthesis', simulated: sim, llamacpp: llama, prefixAffinity: affinity, parseRate: parse };
}
