import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { produceAll } from '../../processors/runtime/topic-io.ts';
import { ensureTopics } from '../../processors/runtime/topics.ts';
import { encodeTokenIds } from '../../trainers/sink/sequence-packer.ts';
import type { TokenBatchRecord } from '../../trainers/sink/trainer-sink-processor.ts';
import { median, round } from './stats.ts';

/** A Llama-style model and batch shape for `ipt bench train`. */
export interface TrainConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  vocabSize: number;
  seqLen: number;
  batchSize: number;
  what: string;
}

export const TRAIN_CONFIGS: Record<string, TrainConfig> = {
  'tiny-cpu': { hiddenSize: 128, layers: 2, heads: 4, vocabSize: 8192, seqLen: 128, batchSize: 4, what: 'CPU: the trainer’s own overhead; a figure, not a goal' },
  'small-cpu': { hiddenSize: 256, layers: 4, heads: 4, vocabSize: 32000, seqLen: 256, batchSize: 4, what: 'CPU, with Llama’s vocabulary' },
  'llama-0.5b': { hiddenSize: 1024, layers: 24, heads: 16, vocabSize: 32000, seqLen: 2048, batchSize: 8, what: 'one GPU, bf16' },
  'llama-1b': { hiddenSize: 2048, layers: 16, heads: 16, vocabSize: 32000, seqLen: 2048, batchSize: 8, what: 'one GPU, bf16 (the size of MPT-1B)' },
};

/** Parameters of the trainer's model for a config: tied embeddings, and per layer attention (4h²) and an MLP of 4h (3 · 4h²). */
export const parameters = (c: TrainConfig) => c.vocabSize * c.hiddenSize + c.layers * 16 * c.hiddenSize * c.hiddenSize;

export interface TrainBenchResult {
  bench: 'train';
  config: string;
  model: TrainConfig & { parameters: number };
  ranks: number;
  fsdp: boolean;
  steps: number;
  /** Steps left out of the medians: the first ones (allocation, warm-up). */
  warmupSteps: number;
  tokensPerSec: number;
  tokensPerSecPerRank: number;
  /** Model FLOPs utilisation: null without a known peak (CPU, unless --peak-tflops). */
  mfu: number | null;
  stepTokensPerSec: number[];
  lossFirst: number;
  lossLast: number;
}

/** Batches of random ids for every rank and step, as the sink writes them (partition = rank). */
function batches(runId: string, c: TrainConfig, ranks: number, steps: number): TokenBatchRecord[] {
  const out: TokenBatchRecord[] = [];
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % c.vocabSize);
  for (let g = 0; g < ranks * steps; g++) {
    const { dtype, bytes } = encodeTokenIds(Uint32Array.from({ length: c.batchSize * (c.seqLen + 1) }, rand), c.vocabSize);
    out.push({ runId, globalStep: g, rank: g % ranks, step: Math.floor(g / ranks), seqLen: c.seqLen, batchSize: c.batchSize, vocabSize: c.vocabSize, dtype, tokens: bytes, sources: [{ source: 'raw', tokens: c.batchSize * c.seqLen }], lastMixIndex: g, createdAt: Date.now() });
  }
  return out;
}

/**
 * Tokens per second (and MFU where the peak is known) of the built-in trainer for a named config: token batches are
 * written to a fresh topic, then `torchrun -m instruct_pt_trainer.train` trains on them for `steps` steps, and the
 * medians come from its per-step metrics lines, leaving out the first steps.
 */
export async function trainBench(
  cfg: RuntimeConfig,
  logger: Logger,
  opts: { config: string; ranks: number; steps: number; fsdp: boolean; python: string; peakTflops?: number; log: (l: string) => void },
): Promise<TrainBenchResult> {
  const c = TRAIN_CONFIGS[opts.config];
  if (!c) throw new Error(`no train config "${opts.config}" (${Object.keys(TRAIN_CONFIGS).join(', ')})`);
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: 'ipt-bench', logger });
  const serde = new AvroSerde(cfg.registryUrl);
  const topic = `bench-train-${randomUUID().slice(0, 8)}.train.tokens`;
  const runId = 'bench-train';
  const admin = kafka.admin();
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'ipt-bench-train-'));
  try {
    await ensureTopics(admin, [{ topic, partitions: opts.ranks }]);
    await serde.registerValueSchema(topic, 'token-batch');
    const schema = loadSchema('token-batch');
    const records = batches(runId, c, opts.ranks, opts.steps);
    await produceAll(kafka, topic, records.map((b) => ({ key: `${runId}/${b.globalStep}`, value: serde.encode(topic, schema, b), partition: b.rank })), 16);
    opts.log(`bench train: ${records.length} batches of ${c.batchSize} × ${c.seqLen + 1} ids in ${topic}; torchrun with ${opts.ranks} rank(s)`);
    const args = ['-m', 'torch.distributed.run', '--nproc_per_node', String(opts.ranks), '--master_port', String(29500 + Math.floor(Math.random() * 500)), '-m', 'instruct_pt_trainer.train',
      '--brokers', cfg.brokers.join(','), '--registry', cfg.registryUrl, '--topic', topic, '--run-id', runId, '--steps', String(opts.steps), '--checkpoint-dir', join(dir, 'ckpt'),
      '--checkpoint-every', String(opts.steps + 1), '--metrics-every', '1', '--warmup-steps', '2', '--hidden-size', String(c.hiddenSize), '--layers', String(c.layers), '--heads', String(c.heads),
      '--idle-timeout-s', '60', ...(opts.fsdp ? ['--fsdp'] : []), ...(opts.peakTflops ? ['--peak-tflops', String(opts.peakTflops)] : [])];
    const { IPT_CLICKHOUSE_URL: _, ...env } = process.env;
    const stdout = await new Promise<string>((resolve, reject) => {
      const p = spawn(opts.python, args, { env: { ...env, OMP_NUM_THREADS: env.OMP_NUM_THREADS ?? '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`torchrun exited ${code}`))));
    });
    const lines = stdout.split('\n').filter((l) => l.startsWith('{"step"')).map((l) => JSON.parse(l) as { step: number; loss: number; tokensPerSecond: number; mfu: number | null });
    if (lines.length < opts.steps) throw new Error(`the trainer logged ${lines.length} of ${opts.steps} steps`);
    const warmupSteps = Math.min(3, opts.steps - 1);
    const measured = lines.slice(warmupSteps);
    const tps = median(measured.map((m) => m.tokensPerSecond));
    const mfus = measured.map((m) => m.mfu).filter((m): m is number => m !== null);
    return {
      bench: 'train',
      config: opts.config,
      model: { ...c, parameters: parameters(c) },
      ranks: opts.ranks,
      fsdp: opts.fsdp,
      steps: opts.steps,
      warmupSteps,
      tokensPerSec: Math.round(tps),
      tokensPerSecPerRank: Math.round(tps / opts.ranks),
      mfu: mfus.length ? round(median(mfus), 4) : null,
      stepTokensPerSec: lines.map((m) => Math.round(m.tokensPerSecond)),
      lossFirst: lines[0]!.loss,
      lossLast: lines.at(-1)!.loss,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}
