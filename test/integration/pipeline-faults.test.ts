import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { cannedServer, envFor, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';
import { spawn } from 'node:child_process';
import { RecordedCompletionsServer, cannedPairs } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { readTopic } from '../../processors/runtime/topic-io.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { logger, testConfig, testKafka } from './helpers.ts';
import { writeFileSync } from 'node:fs';
import { ConfigResourceTypes } from 'kafkajs';
import { ensurePipelineTopics } from '../../ops/pipeline/start-pipeline.ts';
import type { Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';

const servers: RecordedCompletionsServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.stop();
});

/** Mixed records of a run by id, counting copies: a duplicate is an id seen twice. */
async function mixedIds(prefix: string): Promise<Map<string, number>> {
  const r = await readTopic(testKafka(), pipelineTopics(prefix).mixed, { timeoutMs: 3000 });
  const n = new Map<string, number>();
  for (const m of r.messages) {
    const key = m.key!.toString();
    n.set(key, (n.get(key) ?? 0) + 1);
  }
  return n;
}

describe('pipeline run: failures end the run honestly', () => {
  it('fails before writing anything when the tokens estimate needs a tokenize endpoint the server lacks', async () => {
    const server = await cannedServer();
    servers.push(server);
    const iso = isolated();
    const { path } = writeCorpus(tmp(), 5);
    const started = Date.now();
    await expect(runOnStack(iso, path, { 'llm-url': server.url, rounds: '1', 'length-estimate': 'tokens' })).rejects.toThrow(/no tokenize endpoint .*--tokenizer FILE.*--length-estimate words/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(server.prompts).toHaveLength(0);
  });

  it('rejects a text too large for the raw topic by its line, before anything is written, and runs the rest', async () => {
    const server = await cannedServer();
    servers.push(server);
    const iso = isolated();
    const dir = tmp();
    const { path, texts } = writeCorpus(dir, 5);
    // The raw topic of this prefix takes 20 KB records; the third text is 30 KB (within IPT_MAX_TEXT_BYTES).
    const lines = texts.map((t, i) => JSON.stringify(i === 2 ? { id: t.id, text: 'word '.repeat(6000) } : t));
    writeFileSync(path, lines.join('\n') + '\n');
    const topics = await ensurePipelineTopics({ runtime: testConfig(), prefix: iso.prefix, partitions: 2, logger });
    const admin = testKafka().admin();
    await admin.connect();
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.raw, configEntries: [{ name: 'max.message.bytes', value: '20000' }] }] });
    await admin.disconnect();
    const s = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '1' });
    expect(s.ingested).toBe(4);
    expect(s.rejected).toBe(1);
    expect(s.rejects[0]!.line).toBe(3);
    expect(s.rejects[0]!.reason).toMatch(new RegExp(`${path}:3: the text's record is about \\d+ bytes; the raw-text topic takes at most 20000 \\(max.message.bytes\\)`));
    expect(s.augmented).toBe(4);
    expect(s.deadLettered).toBe(0);
  });

  it.each(['staged', 'fused'] as Topology[])('%s: texts whose length cannot be measured are dead-lettered with a failed result, and the next round is not left waiting', async (topology) => {
    // The tokenize endpoint answers the start-up check, then fails (HTTP 500) for good.
    let calls = 0;
    const server = new RecordedCompletionsServer({}, async (text) => {
      if (++calls > 1) throw new Error('tokenizer broke');
      return text.length;
    }, cannedPairs);
    await server.start();
    servers.push(server);
    const iso = isolated();
    const { path } = writeCorpus(tmp(), 12);
    const s = await runOnStack(iso, path, { 'llm-url': server.url, rounds: '2', 'length-estimate': 'tokens', 'llm-deadline-ms': '800', topology }, { timeoutMs: 90_000 });
    expect(s.ingested).toBe(12);
    // Every text accounted for: each dead-lettered with the reason (and left out of its collection), one metric row each.
    expect(s.deadLettered).toBe(12);
    expect(s.deadLetters.every((d) => /length estimate failed: .*token count failed within the 800 ms deadline: HTTP 500/.test(d.reason))).toBe(true);
    expect(s.metricRows.synthesis).toBe(12);
    expect(s.perRound.map((r) => r.failed)).toEqual([6, 6]);
  });
});

describe('pipeline run: SIGTERM', () => {
  it('stops the stages gracefully and exits 1 saying the run is incomplete and how to finish it', async () => {
    const server = await cannedServer();
    servers.push(server);
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 60);
    for (const t of texts) server.delays.set(t.text, 300);
    const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', 'pipeline', 'run', '--input', path, '--llm-url', server.url, '--prefix', iso.prefix, '--partitions', '2', '--length-estimate', 'words', '--concurrency', '2'], {
      env: { ...envFor(iso), IPT_LOG_LEVEL: 'error' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    while (server.prompts.length < 5) await sleep(50);
    child.kill('SIGTERM');
    const started = Date.now();
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(stderr).toMatch(/interrupted by SIGTERM: run \S+ stopped with \d+\/60 texts accounted for; .*ipt pipeline up.* finishes it/);
  });
});

describe('pipeline run: an LLM outage longer than the group session costs time, not texts', () => {
  it.each([
    ['staged', 'false'],
    ['fused', 'true'],
  ] as [Topology, string][])('%s (exactly-once %s): every text converted, none dead-lettered or doubled', async (topology, exactlyOnce) => {
    const server = await cannedServer();
    servers.push(server);
    const port = Number(new URL(server.url).port);
    const iso = isolated();
    const n = 300;
    const { path } = writeCorpus(tmp(), n);
    // Slow answers keep work in flight when the server goes: the outage hits requests mid-chunk.
    const outage = (async () => {
      while (server.prompts.length < 40) await sleep(20);
      await server.stop();
      // Twice the 6 s session: without heartbeats during the wait, the stage's member would be dropped from its group.
      await sleep(13_000);
      await server.start(port);
    })();
    const metrics = new ProcessorMetrics();
    const s = await runOnStack(
      iso,
      path,
      { 'llm-url': server.url, rounds: '2', topology, concurrency: '4' },
      { timeoutMs: 150_000 },
      undefined,
      { IPT_SESSION_TIMEOUT_MS: '6000', IPT_EXACTLY_ONCE: exactlyOnce, IPT_BATCH_SIZE: '50' },
      metrics,
    );
    await outage;
    // Heartbeats kept every stage in its group: no consumer had to be rebuilt.
    expect((await metrics.consumerRestarts.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
    expect(s.ingested).toBe(n);
    expect(s.deadLettered).toBe(0);
    expect(s.augmented).toBe(n);
    expect(s.metricRows.synthesis).toBe(n);
    const copies = await mixedIds(iso.prefix);
    const twice = [...copies.values()].filter((c) => c > 1).length;
    if (exactlyOnce === 'true') expect(twice).toBe(0);
    expect(s.mixed.records).toBe(copies.size);
  });
});
