import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { startPipeline } from '../../ops/pipeline/start-pipeline.ts';
import { pipelineOptions } from '../../ops/cli/pipeline-options.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { cannedServer, envFor, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { logger } from './helpers.ts';

// The tables' port is the real one; the test keeps the callback each pipeline gives it, so that it can tell the
// pipeline a table gave up (its consumer crashed past its rebuilds: minutes of outage, too long to wait for here).
const giveUps: ((topic: string, err: Error) => void)[] = [];
vi.mock('../../processors/runtime/tables.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../processors/runtime/tables.ts')>();
  return {
    ...real,
    kafkaTables: (...args: Parameters<typeof real.kafkaTables>) => {
      if (args[2]) giveUps.push(args[2]);
      return real.kafkaTables(...args);
    },
  };
});

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
});

describe('a table that gives up takes its stages down', () => {
  it('stops every stage of the pipeline and says which table, instead of living on with stages that wait forever', async () => {
    const iso = isolated();
    const t = pipelineTopics(iso.prefix);
    const pipeline = await startPipeline({ ...pipelineOptions('test', { prefix: iso.prefix, 'llm-url': server.url, partitions: '2', stages: 'templating,templating-pool,mixing' }, envFor(iso)), logger });
    while (!pipeline.ready()) await sleep(100);
    giveUps.at(-1)!(t.runs, new Error('crashed 9 times within 600 s; last: the coordinator is not aware of this member'));
    const done = await pipeline.done;
    expect(done).toBeInstanceOf(Error);
    expect((done as Error).message).toMatch(new RegExp(`table over ${t.runs.replace(/\./g, '\\.')} stopped following it: crashed 9 times`));
    expect(pipeline.failure).toBe(done);
    // Every processor stopped, none still consuming.
    await Promise.all(pipeline.processors.map((p) => p.done));
    expect(pipeline.ready()).toBe(false);
    await pipeline.stop();
  }, 60_000);

  it('fails `pipeline run` at once, naming the table, rather than waiting out the run’s timeout', async () => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 30, 'table-failure.jsonl', 'tf');
    const slow = await cannedServer();
    for (const x of texts) slow.delays.set(x.text, 300);
    try {
      const before = giveUps.length;
      const started = Date.now();
      const run = runOnStack(iso, path, { 'llm-url': slow.url, rounds: '2', topology: 'fused' }, { timeoutMs: 120_000 });
      run.catch(() => undefined);
      while (slow.prompts.length < 3) await sleep(50);
      expect(giveUps.length).toBeGreaterThan(before);
      giveUps.at(-1)!(pipelineTopics(iso.prefix).general, new Error('crashed 9 times within 600 s; last: broker gone'));
      await expect(run).rejects.toThrow(/the pipeline's stages stopped: the table over .*general.* stopped following it: crashed 9 times/);
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      await slow.stop();
    }
  }, 120_000);
});
