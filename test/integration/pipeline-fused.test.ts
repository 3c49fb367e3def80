import { kafkaTables } from '../../processors/runtime/tables.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import { PoolContexts } from '../../processors/pipeline/pool-contexts.ts';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { PipelineRunSummary } from '../../ops/jobs/pipeline-run.ts';
import { pretrainingTextsOf, cannedServer, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { testKafka } from './helpers.ts';

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
});

/** What two runs of the same corpus and seed must share whatever the topology. */
const outcome = (s: PipelineRunSummary) => ({
  ingested: s.ingested,
  augmented: s.augmented,
  raw: s.raw,
  deadLettered: s.deadLettered,
  pairs: s.pairs,
  outputTexts: s.outputTexts,
  perRound: s.perRound.map((r) => ({ round: r.round, texts: r.texts, fewShot: r.fewShot, pairs: r.pairs })),
  mixed: s.mixed,
  metricRows: s.metricRows,
});

describe('the fused topology on the real stack', () => {
  it('gives a 3-round run the same texts, counts and metrics as the staged topology, with no requests or results in between', async () => {
    const { path } = writeCorpus(tmp(), 31, 'fused.jsonl', 'fu');
    const staged = isolated();
    const fused = isolated();
    const a = await runOnStack(staged, path, { 'llm-url': server.url, rounds: '3', seed: '5', run: 'same' });
    const b = await runOnStack(fused, path, { 'llm-url': server.url, rounds: '3', seed: '5', run: 'same', topology: 'fused' });
    expect(b.augmented).toBe(31);
    expect(b.perRound.map((r) => r.fewShot)).toEqual([0, 11, 9]);
    expect(outcome(b)).toEqual(outcome(a));
    expect(await pretrainingTextsOf(fused.prefix, b.runId)).toEqual(await pretrainingTextsOf(staged.prefix, a.runId));
    // Requests, results and augmented texts stay in memory: the mixed records carry the lineage.
    for (const topic of ['requests', 'results', 'augmented'] as const) {
      const got = await readTopic(testKafka(), pipelineTopics(fused.prefix)[topic], { timeoutMs: 1000 });
      expect(got.messages, topic).toHaveLength(0);
    }
    // The fused stage's changelog leaves the raw texts out; put back from the raw topic, it is the staged round pool.
    const serde = new AvroSerde(inject('stack').registryUrl);
    const poolOf = async (prefix: string) => {
      const got = await readTopic(testKafka(), pipelineTopics(prefix).pool, { count: 22, timeoutMs: 10_000 });
      await serde.prefetch(got.messages.map((m) => m.value));
      return got.messages.map((m) => serde.decode(m.value, loadSchema('round-collection')) as RoundCollectionRecord).sort((x, y) => x.round - y.round || x.position - y.position);
    };
    const [stagedPool, fusedPool] = [await poolOf(staged.prefix), await poolOf(fused.prefix)];
    expect(fusedPool).toHaveLength(22);
    expect(fusedPool.flatMap((c) => c.collection).every((e) => e.context === '' && e.contextFrom === `${b.runId}/${e.contextId}`)).toBe(true);
    const contexts = new PoolContexts({ tables: kafkaTables(testKafka(), serde), topics: pipelineTopics(fused.prefix), waitMs: 10_000 });
    try {
      const restored = await Promise.all(fusedPool.map((c) => contexts.restore(c)));
      const comparable = (cs: RoundCollectionRecord[]) => cs.map((c) => ({ ...c, finishedAt: 0, collection: c.collection.map((e) => ({ contextId: e.contextId, context: e.context, pairs: e.pairs, inheritFromPrev: e.inheritFromPrev, followedByNext: e.followedByNext, contextFrom: e.contextFrom })) }));
      expect(comparable(restored)).toEqual(comparable(stagedPool));
      expect(stagedPool.flatMap((c) => c.collection).every((e) => e.context !== '' && e.contextFrom === '')).toBe(true);
    } finally {
      await contexts.stop();
    }
    // Every round's text i sits in one partition (the writer places texts by position), so rounds hand over in memory.
    const raw = await readTopic(testKafka(), pipelineTopics(fused.prefix).raw, { count: 31, timeoutMs: 10_000 });
    await serde.prefetch(raw.messages.map((m) => m.value));
    const partitionsByPosition = new Map<number, Set<number>>();
    for (const m of raw.messages) {
      const r = serde.decode(m.value, loadSchema('raw-text')) as RawTextRecord;
      const position = r.seq % 11;
      partitionsByPosition.set(position, (partitionsByPosition.get(position) ?? new Set()).add(m.partition));
    }
    expect([...partitionsByPosition.values()].every((p) => p.size === 1)).toBe(true);
    expect(new Set([...partitionsByPosition.values()].map((p) => [...p][0])).size).toBe(2);
  });
});
