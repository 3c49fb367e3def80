import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import type { PipelineRunSummary } from '../../ops/jobs/pipeline-run.ts';
import { cannedServer, envFor, isolated, runOnStack, tmp, writeCorpus } from './pipeline-harness.ts';

let server: RecordedCompletionsServer;
beforeAll(async () => {
  server = await cannedServer();
});
afterAll(async () => {
  await server.stop();
});

describe('pipeline run reads its input twice instead of holding it', () => {
  it('takes JSONL on stdin (copied aside, read under the name "-"): lines rejected by place, the rest converted and written out in mix order', async () => {
    const iso = isolated();
    const dir = tmp();
    const { texts } = writeCorpus(dir, 14);
    const lines = texts.map((t) => JSON.stringify({ text: t.text }));
    lines.splice(3, 0, '{broken');
    const output = join(dir, 'mixed.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', 'pipeline', 'run', '--input', '-', '--output', output, '--llm-url', server.url, '--prefix', iso.prefix, '--partitions', '2', '--length-estimate', 'words', '--rounds', '2', '--json'], {
      env: { ...envFor(iso), IPT_LOG_LEVEL: 'error' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(lines.join('\n') + '\n');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, stderr).toBe(1);
    const s = JSON.parse(stdout.trim()) as PipelineRunSummary;
    expect(s.ingested).toBe(14);
    expect(s.rejected).toBe(1);
    expect(s.rejects[0]!.line).toBe(4);
    expect(s.rejects[0]!.reason).toMatch(/^-:4: not JSON/);
    expect(stderr).toMatch(/pipeline: rejected -:4: not JSON/);
    expect(s.augmented).toBe(14);
    const out = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mixIndex: number; text: string });
    expect(s.output).toEqual({ path: output, records: s.mixed.records });
    expect(out.map((l) => l.mixIndex)).toEqual(out.map((_, i) => i));
  });

  it('names the texts not yet accounted for when the run times out, read back from the file', async () => {
    const iso = isolated();
    const { path, texts } = writeCorpus(tmp(), 6, 'slow.jsonl', 'slow');
    const slow = await cannedServer();
    // Every answer comes after the run's deadline: none is accounted for, and all six are named by their ids.
    for (const t of texts) slow.delays.set(t.text, 15_000);
    try {
      const names = texts.map((t) => t.id).join(', ');
      await expect(runOnStack(iso, path, { 'llm-url': slow.url, rounds: '1', 'timeout-ms': '30000' }, { timeoutMs: 8000 })).rejects.toThrow(`every text to be accounted for (0/6; e.g. not yet: ${names})`);
    } finally {
      await slow.stop();
    }
  });
});
