import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import { sampleTexts } from '../../processors/runtime/raw-text-records.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import type { RuntimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { ensurePipelineTopics, startPipeline } from '../pipeline/start-pipeline.ts';
import { pipelineTopics, TOPOLOGIES, type StageName, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import type { MixedTextRecord, RawTextRecord } from '../../processors/pipeline/records.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import { instantRecordedBackend } from './instant-backend.ts';
import { fusedOutputsOnly } from './fused-outputs-only.ts';
import { median, round } from './stats.ts';
import { settleBetweenSides } from './settle.ts';
import { probeSide } from './side-probe.ts';
import { rateOverOutput, recordTimestamps, waitForRecords } from './bench-topics.ts';

export interface LatencyFigures {
  texts: number;
  ratePerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface PipelineBenchResult {
  bench: 'pipeline';
  texts: number;
  textBytes: number;
  rounds: number;
  runs: number;
  /** The fused topology (the faster) when measured, else the staged: the figure the goal is about. */
  pipelineTextsPerSec: number;
  identityTextsPerSec: number;
  ratio: number;
  topologies: Partial<Record<Topology, { textsPerSec: number; ratio: number; runs: number[]; latency: LatencyFigures }>>;
  /**
   * The fused stage's outputs written with none of the method's work: the ceiling of the fused ratio with these
   * outputs; and the method's work per text, computing those outputs in memory with no Kafka (µs).
   */
  fusedOutputsOnly?: { textsPerSec: number; ratio: number; runs: number[]; methodMicrosPerText: number };
  identityRuns: number[];
}

/** The benchmarked stages of a topology: templating, synthesis (instant), round feedback and mixing; not evaluation or ClickHouse. */
const benchStages = (topology: Topology): StageName[] => TOPOLOGIES[topology].filter((s) => s !== 'evaluation' && s !== 'clickhouse-sink');

function pipelineOpts(cfg: RuntimeConfig, prefix: string, logger: Logger, topology: Topology) {
  return {
    runtime: cfg,
    prefix,
    partitions: 1,
    llm: { endpoints: [], concurrency: 64, retries: 0, timeoutMs: 10_000, client: instantRecordedBackend() },
    evaluation: { model: 'recorded', maxNewTokens: 400, temperature: 0 },
    clickhouse: { url: '', database: 'unused' },
    stages: benchStages(topology),
    logger,
  };
}

const SIDES = ['identity', 'staged', 'fused', 'outputs-only'] as const;

/**
 * Texts per second through templating → synthesis (an instant recorded backend) → round feedback → mixing, all in
 * one process on one core, in both topologies, against the runtime's identity processor over the same raw-text
 * records. Each side's rate is texts / (last output's timestamp − first output's), so group joins and start-up
 * count on no side; the order of the sides changes from run to run, with a full collection and a pause before each.
 * Beside the fused topology, the same outputs written with no work at all (fusedOutputsOnly), the ceiling for them.
 * Then the added latency per text (raw record's timestamp → its mixed record's), at a steady ingest rate of half the
 * topology's capacity, with LLM time ≈ 0.
 */
export async function pipelineBench(cfg: RuntimeConfig, logger: Logger, opts: { texts: number; runs: number; textBytes: number; rounds: number; topologies: Topology[]; log: (l: string) => void }): Promise<PipelineBenchResult> {
  const kafka = createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: 'ipt-bench', logger });
  const serde = new AvroSerde(cfg.registryUrl);
  const admin = kafka.admin();
  await admin.connect();
  const settings = { preset: 'none' as const, rounds: opts.rounds, seed: 0, model: 'recorded', maxModelLen: 1 << 20, maxNewTokens: 400, lengthEstimate: 'words' as const, temperature: 0 };
  const rates: Record<(typeof SIDES)[number], number[]> = { identity: [], staged: [], fused: [], 'outputs-only': [] };
  const created: string[] = [];
  const methodMicros: number[] = [];
  try {
    for (let r = 0; r < opts.runs; r++) {
      const id = randomUUID().slice(0, 8);
      const measured = SIDES.filter((s) => s === 'identity' || (s === 'outputs-only' ? opts.topologies.includes('fused') : opts.topologies.includes(s)));
      // Rotated, and reversed every other run, so that no side always runs right after the same other one (what a
      // side leaves behind — the broker flushing its writes, say — then falls on every side alike).
      const base = r % 2 === 0 ? measured : [...measured].reverse();
      const shift = Math.floor(r / 2) % measured.length;
      const sides = [...base.slice(shift), ...base.slice(0, shift)];
      const texts = sampleTexts(opts.texts, { runId: id, bytes: opts.textBytes }).map((t) => ({ id: t.id, text: t.text, source: t.source }));
      for (const side of sides) {
        // Each side its own topics with the same records, so none reads what another wrote.
        const topics = pipelineTopics(`bench-${id}-${side}`);
        await ensurePipelineTopics({ runtime: cfg, prefix: topics.prefix, partitions: 1, logger });
        created.push(...(await admin.listTopics()).filter((t) => t.startsWith(topics.prefix)));
        const { run, records } = planRun({ ...settings, runId: `bench-${id}` }, texts);
        const writer = new PipelineWriter(kafka, serde, topics);
        await writer.start();
        await writer.writeRun(run);
        await writer.writeTexts(records, run);
        await writer.stop();
        await settleBetweenSides();
        if (side === 'identity') {
          const out = `${topics.prefix}.identity.out`;
          created.push(out);
          const probed = await probeSide(`${side}-${r + 1}`, opts.log);
          const proc = await startProcessor(identityProcessor({ name: `${topics.prefix}.identity`, input: topics.raw, output: out }), cfg, { logger, kafka });
          await waitForRecords(admin, out, opts.texts);
          await probed();
          await proc.stop();
          rates.identity.push(await rateOverOutput(kafka, out, opts.texts));
          continue;
        }
        // One mixed record per collection: each round-0 text starts one, and with this unbounded length budget every
        // later text joins its predecessor's group (few-shot), so a collection is one pre-training text.
        const groups = run.roundSize;
        let only: Awaited<ReturnType<typeof fusedOutputsOnly>> | undefined;
        if (side === 'outputs-only') {
          only = await fusedOutputsOnly(kafka, serde, topics, logger, records);
          methodMicros.push(only.methodMicrosPerText);
          await settleBetweenSides();
        }
        const probed = await probeSide(`${side}-${r + 1}`, opts.log);
        const pipeline = only ? await startProcessor(only.spec, cfg, { logger, kafka }) : await startPipeline(pipelineOpts(cfg, topics.prefix, logger, side as Topology));
        await waitForRecords(admin, topics.mixed, groups);
        await probed();
        await pipeline.stop();
        // From the first record the first stage wrote to the last mixed record.
        const firstOut = side === 'staged' ? topics.requests : topics.metrics;
        const first = Math.min(...(await recordTimestamps(kafka, firstOut, 1)));
        const last = Math.max(...(await recordTimestamps(kafka, topics.mixed, groups)));
        rates[side].push(opts.texts / Math.max((last - first) / 1000, 0.001));
      }
      opts.log(`bench pipeline: run ${r + 1}/${opts.runs}: ${measured.map((t) => `${t} ${Math.round(rates[t][r]!)} texts/s`).join(', ')}`);
    }
    const b = median(rates.identity);
    const topologies = {} as PipelineBenchResult['topologies'];
    for (const side of opts.topologies) {
      const p = median(rates[side]);
      const latency = await latencyRun(kafka, serde, admin, cfg, logger, opts, p, created, side);
      topologies[side] = { textsPerSec: Math.round(p), ratio: round(p / b), runs: rates[side].map(Math.round), latency };
    }
    return {
      bench: 'pipeline',
      texts: opts.texts,
      textBytes: opts.textBytes,
      rounds: opts.rounds,
      runs: opts.runs,
      pipelineTextsPerSec: (topologies.fused ?? topologies.staged)!.textsPerSec,
      identityTextsPerSec: Math.round(b),
      ratio: (topologies.fused ?? topologies.staged)!.ratio,
      topologies,
      fusedOutputsOnly:
        rates['outputs-only'].length === 0
          ? undefined
          : { textsPerSec: Math.round(median(rates['outputs-only'])), ratio: round(median(rates['outputs-only']) / b), runs: rates['outputs-only'].map(Math.round), methodMicrosPerText: round(median(methodMicros), 1) },
      identityRuns: rates.identity.map(Math.round),
    };
  } finally {
    await admin.deleteTopics({ topics: [...new Set(created)] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/** One round, texts ingested at half the topology's measured capacity while its stages run: per-text latency raw → mixed. */
async function latencyRun(kafka: Kafka, serde: AvroSerde, admin: Admin, cfg: RuntimeConfig, logger: Logger, opts: { textBytes: number; log: (l: string) => void }, capacity: number, created: string[], topology: Topology): Promise<LatencyFigures> {
  const id = randomUUID().slice(0, 8);
  const topics = pipelineTopics(`bench-lat-${id}-${topology}`);
  await ensurePipelineTopics({ runtime: cfg, prefix: topics.prefix, partitions: 1, logger });
  created.push(...(await admin.listTopics()).filter((t) => t.startsWith(topics.prefix)));
  const rate = Math.max(50, Math.round(capacity / 2));
  const n = Math.min(20_000, rate * 8);
  const texts = sampleTexts(n, { runId: id, bytes: opts.textBytes }).map((t) => ({ id: t.id, text: t.text, source: t.source }));
  const { run, records } = planRun({ preset: 'none', rounds: 1, seed: 0, model: 'recorded', maxModelLen: 1 << 20, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0, runId: `lat-${id}` }, texts);
  const writer = new PipelineWriter(kafka, serde, topics);
  await writer.start();
  await writer.writeRun(run);
  const pipeline = await startPipeline(pipelineOpts(cfg, topics.prefix, logger, topology));
  while (!pipeline.ready()) await sleep(50);
  opts.log(`bench pipeline: ${topology} latency at ${rate} texts/s for ${n} texts`);
  const step = 50;
  const t0 = performance.now();
  for (let i = 0; i < n; i += step) {
    const due = t0 + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await writer.writeTexts(records.slice(i, i + step), run);
  }
  await waitForRecords(admin, topics.mixed, n);
  await pipeline.stop();
  await writer.stop();
  const raw = await readTopic(kafka, topics.raw, { count: n, timeoutMs: 60_000 });
  const mixed = await readTopic(kafka, topics.mixed, { count: n, timeoutMs: 60_000 });
  await serde.prefetch([...raw.messages, ...mixed.messages].map((m) => m.value));
  const rawAt = new Map(raw.messages.map((m) => [(serde.decode(m.value, loadSchema('raw-text')) as RawTextRecord).id, Number(m.timestamp)]));
  const lat = mixed.messages.map((m) => Number(m.timestamp) - rawAt.get((serde.decode(m.value, loadSchema('mixed-text')) as MixedTextRecord).sourceId)!).sort((a, b) => a - b);
  const pct = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
  return { texts: n, ratePerSec: rate, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: lat[lat.length - 1]! };
}
