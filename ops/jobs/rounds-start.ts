import { randomUUID } from 'node:crypto';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { ensurePipelineTopics } from '../pipeline/start-pipeline.ts';
import type { PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { validateRun, type RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import { readRun } from './read-run.ts';
import { executeRun, type PipelineRunOptions, type PipelineRunSummary } from './pipeline-run.ts';

export interface RoundsStartOptions {
  runId: string;
  round: number;
  /** The new run's id; by default "<run>.r<round>.<random>". */
  newRunId?: string;
  /** Another seed for templating (the default keeps the original, so the output is the same). */
  seed?: number;
}

/**
 * Re-runs rounds of a run from what Kafka holds, without re-ingesting: a new run that takes the original's texts of
 * round N onward from the raw topic and, for N > 0, its round N − 1 collections from the round pool, then goes
 * through the same stages. Same seed and a deterministic synthesizer give the same pre-training texts.
 */
export async function startRounds(opts: RoundsStartOptions, run: Pick<PipelineRunOptions, 'pipeline' | 'startStages' | 'timeoutMs' | 'log' | 'logger'>): Promise<PipelineRunSummary> {
  const started = Date.now();
  const topics: PipelineTopics = await ensurePipelineTopics({ ...run.pipeline, logger: run.logger });
  const kafka = createKafka({ brokers: run.pipeline.runtime.brokers, security: run.pipeline.runtime.security, clientId: `${run.pipeline.runtime.clientId}-rounds`, logger: run.logger });
  const serde = new AvroSerde(run.pipeline.runtime.registryUrl);
  const original = (await readRun<RunConfig>(kafka, serde, topics.runs, 'run-config', opts.runId, (r) => r.runId)).get(opts.runId);
  if (!original) throw new Error(`run "${opts.runId}" is not in ${topics.runs}`);
  if (original.convertedTexts === null) throw new Error(`run "${opts.runId}" is an open run (one round, texts over HTTP): replay its topic with \`ipt replay\` instead`);
  if (!Number.isInteger(opts.round) || opts.round < 0 || opts.round >= original.rounds) throw new Error(`run "${opts.runId}" has rounds 0…${original.rounds - 1} (got --round ${opts.round})`);
  const newRunId = opts.newRunId ?? `${opts.runId}.r${opts.round}.${randomUUID().slice(0, 6)}`;
  const raws = [...(await readRun<RawTextRecord>(kafka, serde, topics.raw, 'raw-text', opts.runId, (r) => r.id)).values()];
  if (raws.length === 0) throw new Error(`no raw texts of run "${opts.runId}" in ${topics.raw} (retention may have removed them)`);
  const records = raws.filter((r) => (opts.round === 0 ? true : r.convert && r.round >= opts.round)).map((r) => ({ ...r, runId: newRunId }));
  let pool: RoundCollectionRecord[] = [];
  if (opts.round > 0) {
    const collections = [...(await readRun<RoundCollectionRecord>(kafka, serde, topics.pool, 'round-collection', opts.runId, (c) => `${c.round}/${c.position}`)).values()].filter((c) => c.round === opts.round - 1);
    const want = Math.min(original.roundSize, (original.convertedTexts ?? 0) - (opts.round - 1) * original.roundSize);
    if (collections.length !== want) throw new Error(`round ${opts.round - 1} of run "${opts.runId}" left ${collections.length} of its ${want} collections in ${topics.pool}; it has not finished`);
    pool = collections.map((c) => ({ ...c, runId: newRunId, finishedAt: Date.now() }));
  }
  const newRun = validateRun({ ...original, runId: newRunId, createdAt: Date.now(), seed: opts.seed ?? original.seed, startRound: opts.round, replayOf: opts.runId, ingested: records.length });
  const expected = new Set([...records.map((r) => r.id), ...pool.flatMap((c) => c.collection.map((e) => e.contextId))]);
  run.log(`rounds: run ${newRunId} re-runs run ${opts.runId} from round ${opts.round}: ${records.length} texts, ${pool.length} collections`);
  return executeRun(run, { run: newRun, records, pool, expected, evaluations: [], rejects: [] }, started);
}
