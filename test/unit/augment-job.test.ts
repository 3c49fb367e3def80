import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parquetWriteBuffer } from 'hyparquet-writer';
import { formatExample, formatSynthesizerInput, wordsEstimate, localTokenizerEstimator, parseSynthesizerOutput, plainPairs, readTextRecords, runAugment, type AugmentOptions } from 'instruct-pt';
import { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';

const fixture = (f: string) => join('test/fixtures/augment', f);
const recorded = (JSON.parse(readFileSync(fixture('recorded-completions.json'), 'utf8')) as { responses: Record<string, string> }).responses;
const corpus = readFileSync(fixture('corpus.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; text: string });
const pairsOf = (text: string) => plainPairs(parseSynthesizerOutput(recorded[text]!));
const readJsonl = <T>(p: string): T[] => readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

let server: RecordedCompletionsServer;
let dir: string;
beforeEach(async () => {
  server = new RecordedCompletionsServer(recorded);
  await server.start();
  dir = mkdtempSync(join(tmpdir(), 'ipt-augment-'));
});
afterEach(async () => {
  await server.stop();
});

function options(over: Partial<AugmentOptions> = {}): AugmentOptions {
  return {
    input: fixture('corpus.jsonl'),
    output: join(dir, 'out.jsonl'),
    collectionsOutput: join(dir, 'collections.jsonl'),
    rounds: 2,
    llmUrl: server.url,
    model: 'recorded',
    maxModelLen: 4096,
    maxNewTokens: 400,
    lengthEstimate: 'words',
    temperature: 0,
    seed: 7,
    concurrency: 4,
    retries: 3,
    timeoutMs: 5000,
    progress: false,
    log: () => undefined,
    ...over,
  };
}

describe('ipt augment against a recorded-response completions server', () => {
  it('sends zero-shot prompts in round 0 and few-shot prompts from round 0’s collections in round 1', async () => {
    const summary = await runAugment(options());
    const t = corpus.map((c) => c.text);
    // N = 9, M = 2: B = 5; round 0 takes texts 0-4, round 1 texts 5-8 (text 7 is empty and is not sent).
    const round0 = t.slice(0, 5).map(formatSynthesizerInput);
    const round1 = [
      formatExample(t[0]!, pairsOf(t[0]!)) + formatSynthesizerInput(t[5]!),
      formatExample(t[1]!, pairsOf(t[1]!)) + formatSynthesizerInput(t[6]!),
      formatExample(t[3]!, pairsOf(t[3]!)) + formatSynthesizerInput(t[8]!),
    ];
    expect(server.prompts.slice(0, 5).sort()).toEqual([...round0].sort());
    expect(server.prompts.slice(5).sort()).toEqual([...round1].sort());
    expect(summary).toMatchObject({ textsIn: 9, rejectedLines: 0, emptyTexts: 1, parseFailures: 1, pairsOut: 11, collections: 4 });
    expect(summary.rounds.map((r) => [r.texts, r.fewShot, r.llmCalls, r.pairs])).toEqual([
      [5, 0, 5, 8],
      [4, 4, 3, 3],
    ]);
  });

  it('writes collections with their flags, the leftover first in text 0’s collection (as the reference), and every raw text once in the output', async () => {
    await runAugment(options());
    const t = corpus.map((c) => c.text);
    const collections = readJsonl<{ entries: { context: string; pairs: unknown[]; inheritFromPrev: boolean }[] }>(join(dir, 'collections.jsonl'));
    expect(collections.map((c) => c.entries.map((e) => [e.context, e.inheritFromPrev]))).toEqual([
      [[t[4], false], [t[0], false], [t[5], false]],
      [[t[1], false], [t[6], true]],
      [[t[2], false], [t[7], false]],
      [[t[3], false], [t[8], true]],
    ]);
    expect(collections[0]!.entries[1]!.pairs).toEqual(pairsOf(t[0]!));
    const out = readJsonl<{ text: string }>(join(dir, 'out.jsonl')).map((o) => o.text);
    const joined = out.join('\u0000');
    for (const text of t.filter(Boolean)) expect(joined.split(text).length - 1).toBe(1);
    // Groups: [4], [0], [5], [1, 6], [2], [3, 8] → 6 texts; the empty text 7 is counted, not written.
    expect(out).toHaveLength(6);
    expect(out.find((o) => o.includes(t[1]!))).toContain(t[6]!);
  });

  it('spreads over several endpoints and sends each collection’s next round to the endpoint holding its history', async () => {
    const second = new RecordedCompletionsServer(recorded);
    await second.start();
    try {
      const summary = await runAugment(options({ llmUrl: `${server.url},${second.url}` }));
      expect(summary.pairsOut).toBe(11);
      // Which endpoint a collection hashes to depends on the servers' (random) ports; with five collections both
      // may land on one. Spreading is tested with many keys in synthesis-pool.test.ts; here, the affinity.
      expect(server.prompts.length + second.prompts.length).toBe(8);
      // A few-shot prompt starts with its history's first text: that text's round-0 prompt went to the same server.
      const firstContext = (p: string) => p.slice('<s> <CON> '.length, p.indexOf(' </CON>'));
      for (const s of [server, second]) {
        const zeroShot = new Set(s.prompts.filter((p) => !p.includes('</s>')).map(firstContext));
        for (const p of s.prompts.filter((q) => q.includes('</s>'))) expect(zeroShot.has(firstContext(p))).toBe(true);
      }
    } finally {
      await second.stop();
    }
  });

  it('is deterministic for a seed', async () => {
    await runAugment(options());
    const first = readFileSync(join(dir, 'out.jsonl'), 'utf8');
    await runAugment(options());
    expect(readFileSync(join(dir, 'out.jsonl'), 'utf8')).toBe(first);
    await runAugment(options({ seed: 8 }));
    expect(readFileSync(join(dir, 'out.jsonl'), 'utf8')).not.toBe(first);
  });

  it('retries transient errors, reports a prompt that fails every try, and goes on with the round', async () => {
    const t = corpus.map((c) => c.text);
    server.transientFailures.set(t[0]!, 2);
    server.permanentFailures.add(t[2]!);
    const summary = await runAugment(options({ retries: 2 }));
    expect(summary.failed).toHaveLength(1);
    expect(summary.failed[0]).toMatchObject({ id: 'doc-2', line: 3, round: 0 });
    expect(summary.failed[0]!.reason).toMatch(/after 3 attempts: HTTP 500/);
    expect(summary.pairsOut).toBe(10);
    const out = readFileSync(join(dir, 'out.jsonl'), 'utf8');
    expect(out).toContain(JSON.stringify(t[2]).slice(1, -1));
  });

  it('rides out its server going away mid-job: the texts wait, none fails, and the job ends with every pair', async () => {
    const calm = await runAugment(options({ output: join(dir, 'calm.jsonl'), collectionsOutput: undefined }));
    const port = Number(new URL(server.url).port);
    const lines: string[] = [];
    // Slow answers keep requests in flight when the server stops.
    for (const c of corpus) server.delays.set(c.text, 150);
    const before = server.prompts.length;
    const job = runAugment(options({ retries: 0, concurrency: 2, log: (l) => lines.push(l) }));
    while (server.prompts.length < before + 3) await new Promise((r) => setTimeout(r, 10));
    await server.stop();
    await new Promise((r) => setTimeout(r, 1500));
    server = new RecordedCompletionsServer(recorded);
    for (const c of corpus) server.delays.set(c.text, 150);
    await server.start(port);
    const summary = await job;
    expect(summary.failed).toEqual([]);
    expect(summary.pairsOut).toBe(calm.pairsOut);
    expect(readFileSync(join(dir, 'out.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'calm.jsonl'), 'utf8'));
    expect(summary.rounds.reduce((n, r) => n + r.llmCalls, 0)).toBe(calm.rounds.reduce((n, r) => n + r.llmCalls, 0));
    // Records refused through the 1.5 s outage back off (up to 2–4 s by then) before they try again: seconds, not the
    // default 5 s test budget, on a loaded machine.
  }, 30_000);

  it('reports a text longer than the model even alone, keeping it raw', async () => {
    const long = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
    const input = join(dir, 'long.jsonl');
    writeFileSync(input, `${JSON.stringify({ id: 'long', text: long })}\n${JSON.stringify({ text: corpus[0]!.text })}\n`);
    const summary = await runAugment(options({ input, rounds: 1, maxModelLen: 100, maxNewTokens: 20 }));
    // '<s>', '<CON>', 80 words, '</CON>\n\n': 83 pieces.
    expect(summary.tooLong).toEqual([{ id: 'long', line: 1, length: wordsEstimate(formatSynthesizerInput(long)) }]);
    expect(wordsEstimate(formatSynthesizerInput(long))).toBe(83 * 1.5);
    expect(server.prompts).toEqual([formatSynthesizerInput(corpus[0]!.text)]);
    expect(readJsonl<{ text: string }>(join(dir, 'out.jsonl')).map((o) => o.text)).toContain(long);
  });

  it('uses a local tokenizer.json for the tokens estimate', async () => {
    const estimate = localTokenizerEstimator('test/fixtures/wordlevel-tokenizer.json');
    expect(await estimate('a b c')).toBe(3);
    // Whitespace pre-tokenizer: < s > < CON > a b </ CON >
    expect(await estimate(formatSynthesizerInput('a b'))).toBe(11);
    const summary = await runAugment(options({ lengthEstimate: 'tokens', tokenizer: 'test/fixtures/wordlevel-tokenizer.json' }));
    expect(summary.pairsOut).toBe(11);
  });

  it('uses the server’s tokenize endpoint for the tokens estimate, with the same counts as the tokenizer', async () => {
    const tokenizer = localTokenizerEstimator('test/fixtures/wordlevel-tokenizer.json');
    const withTokenize = new RecordedCompletionsServer(recorded, async (t) => tokenizer(t));
    await withTokenize.start();
    try {
      // This tokenizer splits punctuation, so it counts more than the words estimate: a budget between the two
      // admits a few-shot prompt under words and not under tokens.
      const t = corpus.map((c) => c.text);
      const candidate = formatExample(t[0]!, pairsOf(t[0]!)) + formatSynthesizerInput(t[5]!);
      const tokens = await tokenizer(candidate);
      const words = wordsEstimate(candidate);
      expect(tokens).toBeGreaterThan(words);
      const budget = { maxModelLen: Math.ceil(words) + 400, maxNewTokens: 400 };
      const byWords = await runAugment(options({ llmUrl: withTokenize.url, lengthEstimate: 'words', ...budget }));
      expect(withTokenize.prompts).toContain(candidate);
      withTokenize.prompts.length = 0;
      const byTokens = await runAugment(options({ llmUrl: withTokenize.url, lengthEstimate: 'tokens', ...budget }));
      expect(withTokenize.prompts).not.toContain(candidate);
      expect(withTokenize.prompts).toContain(formatSynthesizerInput(t[5]!));
      expect(byTokens.rounds[1]!.fewShot).toBeLessThan(byWords.rounds[1]!.fewShot);
    } finally {
      await withTokenize.stop();
    }
  });

  it('times out a slow response, retries it, and reports it after the last try', async () => {
    const t = corpus.map((c) => c.text);
    server.delays.set(t[3]!, 2000);
    const summary = await runAugment(options({ timeoutMs: 300, retries: 1 }));
    expect(summary.failed).toEqual([{ id: 'doc-3', line: 4, round: 0, reason: `completion failed after 2 attempts: timed out after 300 ms at ${server.url}` }]);
    expect(server.prompts.filter((p) => p === formatSynthesizerInput(t[3]!))).toHaveLength(2);
    expect(summary.textsIn).toBe(9);
  });

  it('fails at once, naming the endpoint and the flag, when no LLM endpoint answers', async () => {
    const { freePort } = await import('../fixtures/free-port.ts');
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    const started = Date.now();
    await expect(runAugment(options({ llmUrl: dead }))).rejects.toThrow(new RegExp(`no LLM endpoint answers: ${dead} \\(.*ECONNREFUSED.*\\); check --llm-url`));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('goes on with the endpoints that answer, and says which one does not', async () => {
    const { freePort } = await import('../fixtures/free-port.ts');
    const dead = `http://127.0.0.1:${await freePort()}/v1`;
    const lines: string[] = [];
    const s = await runAugment(options({ llmUrl: `${dead},${server.url}`, log: (l) => lines.push(l) }));
    expect(s.failed).toEqual([]);
    expect(lines.some((l) => l.includes(`LLM endpoint ${dead} does not answer`))).toBe(true);
    // The dead endpoint is retried with backoff while the live one does the work: seconds on a loaded machine.
  }, 30_000);

  it('refuses the tokens estimate when the server has no tokenize endpoint and no tokenizer is given', async () => {
    await expect(runAugment(options({ lengthEstimate: 'tokens' }))).rejects.toThrow(/no tokenize endpoint/);
  });
});

describe('input records', () => {
  it('reports bad JSONL lines with their line numbers and keeps the rest', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipt-input-'));
    const p = join(dir, 'bad.jsonl');
    writeFileSync(p, Buffer.concat([
      Buffer.from('{"text":"good one"}\nnot json\n{"id":"x"}\n{"text":5}\n'),
      Buffer.from([0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a]),
      Buffer.from('\n{"id":"last","text":"good two"}\n'),
    ]));
    const records = [];
    for await (const r of readTextRecords(p)) records.push(r);
    expect(records.filter((r) => r.ok).map((r) => r.ok && [r.id, r.text, r.line])).toEqual([
      ['bad.jsonl:1', 'good one', 1],
      ['last', 'good two', 7],
    ]);
    expect(records.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual([
      `${p}:2: not JSON (Unexpected token 'o', "not json" is not valid JSON)`,
      `${p}:3: no "text" field`,
      `${p}:4: "text" is number, not a string`,
      `${p}:5: not valid UTF-8`,
    ]);
  });

  it('reads Parquet with a text column, reporting null texts by row', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipt-input-'));
    const p = join(dir, 'texts.parquet');
    const buf = parquetWriteBuffer({ columnData: [{ name: 'id', data: ['a', 'b', 'c'], type: 'STRING' }, { name: 'text', data: ['first', null, 'third'], type: 'STRING', nullable: true }] });
    writeFileSync(p, Buffer.from(buf));
    const records = [];
    for await (const r of readTextRecords(p)) records.push(r);
    expect(records).toEqual([
      { ok: true, id: 'a', text: 'first', line: 1 },
      { ok: false, line: 2, reason: `${p}: row 2: "text" is null, not a string` },
      { ok: true, id: 'c', text: 'third', line: 3 },
    ]);
  });

  it('the CLI exits non-zero on rejected lines unless --allow-rejects, and prints a JSON summary', () => {
    dir = mkdtempSync(join(tmpdir(), 'ipt-cli-'));
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, `${JSON.stringify({ text: corpus[0]!.text })}\nbroken\n`);
    const args = ['--import', 'tsx', 'ops/cli/main.ts', 'augment', '--input', input, '--output', join(dir, 'o.jsonl'), '--llm-url', server.url, '--rounds', '1', '--length-estimate', 'words', '--json'];
    const run = (extra: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      // spawnSync would block this process's event loop, and with it the recorded server the CLI talks to.
      import('node:child_process').then(({ spawn }) => {
        const child = spawn(process.execPath, [...args, ...extra]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (status) => resolve({ status, stdout, stderr }));
      });
    });
    return (async () => {
      const strict = await run([]);
      expect(strict.status).toBe(1);
      expect(strict.stderr).toContain(`${input}:2: not JSON`);
      const summary = JSON.parse(strict.stdout) as { textsIn: number; rejectedLines: number; pairsOut: number };
      expect(summary).toMatchObject({ textsIn: 1, rejectedLines: 1, pairsOut: 2 });
      expect((await run(['--allow-rejects'])).status).toBe(0);
    })();
  }, 60_000);
});
