import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { AugmentedTextRecord } from '../../processors/pipeline/records.ts';
import { pipelineTopics, stageGroup, TOPOLOGIES } from '../../processors/pipeline/pipeline-topics.ts';
import { startPipeline } from '../../ops/pipeline/start-pipeline.ts';
import { pipelineOptions } from '../../ops/cli/pipeline-options.ts';
import { startRounds } from '../../ops/jobs/rounds-start.ts';
import { replayTopic } from '../../ops/jobs/replay.ts';
import { pretrainingTextsOf, cannedServer, envFor, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { exited, logger, spawnIpt, testKafka } from './helpers.ts';

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
});

describe('replay on the real stack', () => {
  it.each(['staged', 'fused'] as const)('re-runs rounds from what Kafka holds and gives the same output for the same seed (%s)', async (topology) => {
    const iso = isolated();
    // 31 texts in rounds of 11, 11 and 9: a run from round 2 starts with two round-1 collections no text continues.
    const { path } = writeCorpus(tmp(), 31, 'replay.jsonl', 'rp');
    const first = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '3', seed: '3', topology });
    expect(first.augmented).toBe(31);
    const original = await pretrainingTextsOf(iso.prefix, first.runId);
    const values = { prefix: iso.prefix, 'llm-url': server.url, partitions: '2', topology };
    const common = { pipeline: pipelineOptions('test', values, envFor(iso)), startStages: true, timeoutMs: 120_000, log: () => undefined, logger };
    const promptsBefore = server.prompts.length;
    for (const round of [2, 0]) {
      const again = await startRounds({ runId: first.runId, round }, common);
      expect(again.augmented).toBe(31);
      expect(again.deadLettered).toBe(0);
      expect(again.mixed.augmented).toBe(again.outputTexts);
      expect(await pretrainingTextsOf(iso.prefix, again.runId)).toEqual(original);
    }
    // Round 2 alone synthesizes its 9 texts; round 0 all 31: nothing was re-ingested, and nothing more was sent.
    expect(server.prompts.length - promptsBefore).toBe(9 + 31);
    // A replay of the raw topic moves the topology's reader of it, not the other's.
    const t = pipelineTopics(iso.prefix);
    const moved = await replayTopic(testKafka(), t, t.raw, 'earliest');
    expect(moved.groups.map((g) => g.group)).toEqual([stageGroup(t, topology === 'fused' ? 'fused' : 'templating')]);
    if (topology === 'fused') {
      // The staged stages read the fused stage's round pool too: its records leave the raw texts out.
      const staged = { ...common, pipeline: pipelineOptions('test', { ...values, topology: 'staged' }, envFor(iso)) };
      const again = await startRounds({ runId: first.runId, round: 1 }, staged);
      expect(again.augmented).toBe(31);
      expect(await pretrainingTextsOf(iso.prefix, again.runId)).toEqual(original);
    }
  });

  it('moves a stopped stage back to the start of its topic, and refuses while it runs', async () => {
    const iso = isolated();
    const { path } = writeCorpus(tmp(), 6, 'offsets.jsonl', 'off');
    await runOnStack(iso, path, { 'llm-url': server.url, rounds: '1' });
    const t = pipelineTopics(iso.prefix);
    const kafka = testKafka();
    const result = await replayTopic(kafka, t, t.raw, 'earliest');
    expect(result.groups.map((g) => g.group)).toEqual([stageGroup(t, 'templating')]);
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId: stageGroup(t, 'templating'), topics: [t.raw] });
    await admin.disconnect();
    expect(offsets[0]!.partitions.every((p) => p.offset === '0')).toBe(true);
    const running = await startPipeline({ ...pipelineOptions('test', { prefix: iso.prefix, 'llm-url': server.url, partitions: '2', stages: 'templating' }, envFor(iso)), logger });
    try {
      while (!running.ready()) await sleep(100);
      await expect(replayTopic(kafka, t, t.raw, 'earliest')).rejects.toThrow(/is running/);
    } finally {
      await running.stop();
    }
  });

  it.each([
    ['staged', 'synthesis'],
    ['fused', 'fused'],
  ] as const)('loses nothing when the %s topology’s %s process is killed and restarted mid-run', async (topology, killed) => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 40, 'kill.jsonl', 'kill');
    const slow = await cannedServer();
    for (const t of texts) slow.delays.set(t.text, 150);
    const env = { IPT_CLICKHOUSE_DB: iso.database, IPT_BATCH_SIZE: '5' };
    const args = ['pipeline', 'up', '--stages', killed, '--prefix', iso.prefix, '--partitions', '2', '--llm-url', slow.url, '--concurrency', '4'];
    let child = spawnIpt(args, env);
    const killer = (async () => {
      // Killed with part of round 0 done: round-1 texts of the restarted process continue collections it never held.
      while (slow.prompts.length < 12) await sleep(50);
      child.kill('SIGKILL');
      await exited(child);
      const sentBeforeKill = slow.prompts.length;
      await sleep(1000);
      child = spawnIpt(args, env);
      return sentBeforeKill;
    })();
    try {
      const others = TOPOLOGIES[topology].filter((s) => s !== killed).join(',');
      const s = await runOnStack(iso, path, { 'llm-url': slow.url, rounds: '2', stages: others, run: 'killed' });
      expect(await killer).toBeLessThan(40);
      expect(s.ingested).toBe(40);
      expect(s.augmented).toBe(40);
      expect(s.deadLettered).toBe(0);
      expect(s.metricRows.synthesis).toBe(40);
      expect(s.perRound.map((r) => r.fewShot)).toEqual([0, 20]);
      // The same pre-training texts as an uninterrupted run.
      const calm = isolated();
      const c = await runOnStack(calm, path, { 'llm-url': server.url, rounds: '2', run: 'killed', topology });
      expect(await pretrainingTextsOf(iso.prefix, s.runId)).toEqual(await pretrainingTextsOf(calm.prefix, c.runId));
    } finally {
      child.kill('SIGTERM');
      await exited(child);
      await slow.stop();
    }
  });
});
