import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import kafkajs, { Partitioners } from 'kafkajs';
import avro from 'avsc';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { runAugment } from '../../ops/jobs/augment.ts';
import { auditRun } from '../../ops/jobs/audit.ts';
import { RunMonitor } from '../../ops/jobs/run-monitor.ts';
import type { Served } from '../../ops/server/serve.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { openRunRecord, planRun } from '../../connectors/ingest/run-plan.ts';
import { messageLimits } from '../../connectors/ingest/message-limits.ts';
import { executeRun } from '../../ops/jobs/pipeline-run.ts';
import { pipelineOptions, runSettings } from '../../ops/cli/pipeline-options.ts';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { pipelineTopics, recordKey, type PipelineTopics, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { seqOf } from '../../processors/pipeline/run-config.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import { readTopic, scanToEnd } from '../../processors/runtime/topic-io.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import { ensurePipelineTopics } from '../../ops/pipeline/start-pipeline.ts';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import type { RecordedCompletionsServer } from '../../ops/recorded-llm/recorded-completions-server.ts';
import { cannedServer, envFor, isolated, pretrainingTextsOf, runOnStack, serveOnStack, tmp } from './pipeline-harness.ts';
import { logger, testConfig, testKafka } from './helpers.ts';
import {
  FILE_KINDS,
  OVER_TOPIC_TEXT_BYTES,
  poisonCorpus,
  poisonEvaluations,
  poisonRows,
  poisonTopicRecords,
  breakTextRule,
  ruleCorpus,
  TOPIC_KINDS,
  TOPIC_LIMIT_BYTES,
  type EvaluationKind,
  type FileKind,
  type PoisonLine,
  type PoisonRow,
  type RuleKind,
  type TopicPoison,
} from '../fixtures/poison-corpus.ts';

// Not found by Node's named-export detection in kafkajs's CommonJS entry.
const { ConfigResourceTypes } = kafkajs;

const corpus = poisonCorpus(1);
const rows = poisonRows(1);
const dir = tmp();
const jsonlPath = join(dir, 'poison.jsonl');
const parquetPath = join(dir, 'poison.parquet');
const evaluations = poisonEvaluations(1);
const evaluationPath = join(dir, 'poison-evaluations.jsonl');
let llm: RecordedCompletionsServer;

/** What happened to each kind of record on each entry point, with counts: printed as a table at the end. */
const outcomes = new Map<string, number>();
/** One actual reason per row of the table, shortened: the file's directory left out. */
const examples = new Map<string, string>();
const ENTRY_POINTS = ['ipt augment (JSONL)', 'ipt augment (Parquet)', 'pipeline run (JSONL)', 'pipeline run (Parquet)', 'pipeline run --evaluation (JSONL)', 'HTTP ingest', 'raw-text topic'] as const;
type EntryPoint = (typeof ENTRY_POINTS)[number];
const note = (kind: string, entry: EntryPoint, what: string, example?: string) => {
  const k = `${kind}\u0000${entry}\u0000${what}`;
  outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  if (example !== undefined && !examples.has(k)) examples.set(k, JSON.stringify(example.replaceAll(dir, '…').slice(0, 110)));
};

/** The phrase that identifies each kind in a file reader's reason (after "<file>:<line>: " or "<file>: row <n>: "). */
const FILE_REASON: Record<FileKind, { re: (l: { variant: string; id?: string; first?: number }) => RegExp; label: string }> = {
  'invalid JSON': { re: () => /^not JSON \(/, label: 'not JSON' },
  'not an object': { re: () => /^not a JSON object$/, label: 'not a JSON object' },
  'no text': { re: () => /^no "text" field$/, label: 'no "text" field' },
  'non-string text': { re: (l) => new RegExp(`^"text" is ${l.variant}, not a string$`), label: '"text" is <type>, not a string' },
  'invalid UTF-8': { re: () => /^(not valid UTF-8|"text" is not valid UTF-8)$/, label: 'not valid UTF-8' },
  'lone surrogate': { re: () => /^"text" has a lone surrogate \(U\+D[89A-F][0-9A-F]{2}\) at character \d+: not encodable as UTF-8$/, label: 'lone surrogate (U+D…) at character N' },
  NUL: { re: () => /^"text" has a NUL character at character \d+$/, label: 'NUL character at character N' },
  'over IPT_MAX_TEXT_BYTES': { re: () => /^"text" is \d{7} bytes; at most 1048576 \(IPT_MAX_TEXT_BYTES\)$/, label: '"text" is N bytes; at most 1048576 (IPT_MAX_TEXT_BYTES)' },
  'over the topic limit': {
    re: () => new RegExp(`^the text's record is about \\d+ bytes; the raw-text topic takes at most ${TOPIC_LIMIT_BYTES} \\(max\\.message\\.bytes\\)$`),
    label: `record about N bytes; the raw-text topic takes at most ${TOPIC_LIMIT_BYTES} (max.message.bytes)`,
  },
  'id reused': { re: (l) => new RegExp(`^id "${l.id}" already used on line ${l.first}$`), label: 'id "X" already used on line N' },
  'bad id': { re: () => /^"id" (must be a string of 1–256 characters without whitespace, "\/", control characters or lone surrogates|is (boolean|object); it must be a string or a number|is not valid UTF-8)$/, label: '"id" must be …' },
};

const JOB_KINDS: FileKind[] = ['id reused', 'over the topic limit'];

/** Checks a file path's rejects: every bad record (but those `accepted`) by its place, with its kind's phrase; notes each. */
function checkFileRejects(entry: EntryPoint, path: string, rejects: { line: number; reason: string }[], records: { place: number; kind: FileKind | 'good'; variant: string; id?: string; first?: number }[], accepted: FileKind[]) {
  const byPlace = new Map(rejects.map((r) => [r.line, r.reason]));
  expect(byPlace.size, 'one reject per line').toBe(rejects.length);
  const parquet = path.endsWith('.parquet');
  for (const r of records) {
    const reason = byPlace.get(r.place);
    byPlace.delete(r.place);
    if (r.kind === 'good' || accepted.includes(r.kind)) {
      expect(reason, `${path}:${r.place} (${r.kind}) was rejected`).toBeUndefined();
      note(r.kind, entry, r.kind === 'good' ? 'accepted (good)' : 'accepted: a good text on a path with no topic limit');
      continue;
    }
    expect(reason, `${path}:${r.place} (${r.kind}, ${r.variant}) was not rejected`).toBeDefined();
    // The readers name a Parquet row "<file>: row <n>"; the jobs' own checks (a reused id, the topic's limit) say "<file>:<n>".
    const prefix = parquet && !JOB_KINDS.includes(r.kind) ? `${path}: row ${r.place}: ` : `${path}:${r.place}: `;
    expect(reason!.startsWith(prefix), `${reason} should start with ${prefix}`).toBe(true);
    const phrase = reason!.slice(prefix.length);
    expect(phrase, `${path}:${r.place} (${r.kind}, ${r.variant})`).toMatch(FILE_REASON[r.kind].re(r));
    note(r.kind, entry, `rejected, "${prefix === `${path}:${r.place}: ` ? '<file>:<n>' : '<file>: row <n>'}: ${FILE_REASON[r.kind].label}"`, reason);
  }
  expect([...byPlace], 'rejects of no bad record').toEqual([]);
}

const EVALUATION_REASON: Record<EvaluationKind, { re: (l: { id?: string; firstLine?: number }) => RegExp; label: string }> = {
  'invalid JSON': { re: () => /^not JSON \(/, label: 'not JSON' },
  'not an object': { re: () => /^not a JSON object$/, label: 'not a JSON object' },
  'missing field': { re: () => /^("(context|instruction)" must be a string|"response" \(a string\) or "responses" \(strings\) is required)$/, label: '"<field>" must be a string | "response" … is required' },
  'invalid UTF-8': { re: () => /^not valid UTF-8$/, label: 'not valid UTF-8' },
  'lone surrogate': { re: () => /^"(instruction|response)" has a lone surrogate \(U\+D800\) at character 5: not encodable as UTF-8$/, label: '"<field>" has a lone surrogate (U+D800) at character N' },
  NUL: { re: () => /^"(context|response)" has a NUL character at character 4$/, label: '"<field>" has a NUL character at character N' },
  'bad id': { re: () => /^"id" (must be a string of 1–256 characters without whitespace, "\/", control characters or lone surrogates|is boolean; it must be a string or a number)$/, label: '"id" must be …' },
  'id reused': { re: (l) => new RegExp(`^id "${l.id}" already used on line ${l.firstLine}$`), label: 'id "X" already used on line N' },
  'bad examples': { re: () => /^"examples" must be \[\{context, pairs: \[\{question, answer\}\]\}\]$/, label: '"examples" must be [{context, pairs: [{question, answer}]}]' },
};

/** The evaluation file's bad lines, each rejected by line with its reason; its good records each evaluated. */
function checkEvaluationRejects(log: string[], evaluationRows: number) {
  const entry: EntryPoint = 'pipeline run --evaluation (JSONL)';
  const prefix = 'pipeline: evaluation: rejected ';
  const byLine = new Map(log.filter((l) => l.startsWith(prefix)).map((l) => [Number(l.slice(prefix.length + evaluationPath.length + 1).split(':')[0]), l.slice(prefix.length)]));
  for (const l of evaluations.lines) {
    const reason = byLine.get(l.line);
    byLine.delete(l.line);
    if (l.kind === 'good') {
      expect(reason, `${evaluationPath}:${l.line} (good) was rejected`).toBeUndefined();
      note('good', entry, 'accepted (good): evaluated');
      continue;
    }
    expect(reason, `${evaluationPath}:${l.line} (${l.kind}, ${l.variant}) was not rejected`).toBeDefined();
    expect(reason!.startsWith(`${evaluationPath}:${l.line}: `), reason).toBe(true);
    expect(reason!.slice(`${evaluationPath}:${l.line}: `.length), `${evaluationPath}:${l.line} (${l.kind}, ${l.variant})`).toMatch(EVALUATION_REASON[l.kind].re(l));
    note(l.kind, entry, `rejected, "<file>:<n>: ${EVALUATION_REASON[l.kind].label}"`, reason);
  }
  expect([...byLine], 'rejects of no bad line').toEqual([]);
  // One metric row per good record and shot count: zero-shot, and few-shot where it has examples.
  expect(evaluationRows).toBe(evaluations.lines.filter((l) => l.kind === 'good').reduce((n, l) => n + (l.examples ? 2 : 1), 0));
}

const fileRecords = (lines: PoisonLine[]) => lines.map((l) => ({ place: l.line, kind: l.kind, variant: l.variant, id: l.id, first: l.firstLine }));
const rowRecords = (rs: PoisonRow[]) => rs.map((r) => ({ place: r.row, kind: r.kind, variant: r.variant, id: r.kind === 'id reused' ? Buffer.from(r.id).toString() : undefined, first: r.firstRow }));

/** Every text appears verbatim in the outputs. */
function expectVerbatim(outputs: string[], texts: string[], what: string) {
  const joined = outputs.join('\u0000');
  const missing = texts.filter((t) => !joined.includes(t));
  expect(missing.map((t) => t.slice(0, 60)), `${what}: good texts missing or altered`).toEqual([]);
}

/** Each raw text id of a run's domain texts in the mixed stream, with the ids of the mixed record that holds it. */
async function mixedLineage(prefix: string, runId: string): Promise<Map<string, string[]>> {
  const serde = new AvroSerde(inject('stack').registryUrl);
  const r = await readTopic(testKafka(), pipelineTopics(prefix).mixed, { timeoutMs: 3000 });
  await serde.prefetch(r.messages.map((m) => m.value));
  const out = new Map<string, string[]>();
  for (const m of r.messages) {
    const x = serde.decode(m.value, loadSchema('mixed-text')) as MixedTextRecord;
    if (x.runId === runId && x.source !== 'general') for (const id of x.textIds) out.set(id, x.textIds);
  }
  return out;
}

async function lowerRawTopicLimit(prefix: string): Promise<PipelineTopics> {
  const topics = await ensurePipelineTopics({ runtime: testConfig(), prefix, partitions: 2, logger });
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.raw, configEntries: [{ name: 'max.message.bytes', value: String(TOPIC_LIMIT_BYTES) }] }] });
    // The change goes through the controller and reaches the broker's answers a moment later: wait until it shows.
    const deadline = Date.now() + 30_000;
    while ((await messageLimits(admin, [topics.raw])).get(topics.raw) !== TOPIC_LIMIT_BYTES) {
      if (Date.now() > deadline) throw new Error(`${topics.raw}: max.message.bytes ${TOPIC_LIMIT_BYTES} not visible after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.disconnect();
  }
  return topics;
}

async function audit(prefix: string, database: string, runId: string) {
  const ch = clickhouseClient(inject('stack').clickhouseUrl, database);
  try {
    return await auditRun({ kafka: testKafka(), serde: new AvroSerde(inject('stack').registryUrl), topics: pipelineTopics(prefix), clickhouse: ch, runId });
  } finally {
    await ch.close();
  }
}

beforeAll(async () => {
  writeFileSync(jsonlPath, corpus.jsonl);
  writeFileSync(evaluationPath, evaluations.jsonl);
  writeFileSync(
    parquetPath,
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: rows.map((r) => r.id), type: 'BYTE_ARRAY' },
          { name: 'text', data: rows.map((r) => r.text), type: 'BYTE_ARRAY', nullable: true },
        ],
      }),
    ),
  );
  llm = await cannedServer();
});

afterAll(async () => {
  await llm?.stop();
  const lines = ['| kind | entry point | records | what happened | e.g. |', '|---|---|---|---|---|'];
  const kinds = ['good', ...FILE_KINDS, 'missing field', 'bad examples', ...TOPIC_KINDS, 'schema refused by the registry', 'record over the broker limit'];
  const sorted = [...outcomes].map(([k, n]) => [...k.split('\u0000'), n] as [string, string, string, number]);
  sorted.sort((a, b) => kinds.indexOf(a[0]) - kinds.indexOf(b[0]) || ENTRY_POINTS.indexOf(a[1] as EntryPoint) - ENTRY_POINTS.indexOf(b[1] as EntryPoint) || a[2].localeCompare(b[2]));
  for (const [kind, entry, what, n] of sorted) lines.push(`| ${kind} | ${entry} | ${n} | ${what} | ${examples.get(`${kind}\u0000${entry}\u0000${what}`) ?? ''} |`);
  const refused = sorted.filter(([k, , w]) => k !== 'good' && !w.startsWith('accepted') && !w.startsWith('NOT'));
  lines.push('', `bad records refused, by entry point: ${ENTRY_POINTS.map((e) => `${e} ${refused.filter(([, x]) => x === e).reduce((s, r) => s + r[3], 0)}`).join(', ')}`);
  console.log(`\npoison input: what became of each kind on each entry point\n${lines.join('\n')}\n`);
});

describe('poison input: 1,000 bad records among good ones, through every entry point', () => {
  it('the corpus: 1,000 bad lines of 11 kinds and 200 good ones, the same for a seed', () => {
    expect(corpus.bad).toHaveLength(1000);
    expect(corpus.good).toHaveLength(200);
    expect(new Set(corpus.bad.map((l) => l.kind)).size).toBe(11);
    expect(poisonCorpus(1).jsonl.equals(corpus.jsonl)).toBe(true);
  });

  it('Parquet ids of an integer column keep their value (they were replaced by "<file>:<row>")', async () => {
    const p = join(dir, 'int-ids.parquet');
    writeFileSync(p, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: [7n, 8n], type: 'INT64' }, { name: 'text', data: ['seven', 'eight'], type: 'STRING' }] })));
    const got = [];
    for await (const r of readTextRecords(p)) got.push(r);
    expect(got).toEqual([
      { ok: true, id: '7', text: 'seven', line: 1 },
      { ok: true, id: '8', text: 'eight', line: 2 },
    ]);
  });

  it('ipt augment (CLI) on JSONL: exits 1, rejects every bad line by file:line with its reason, writes every good text unchanged', async () => {
    const output = join(dir, 'augmented.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli/main.ts', 'augment', '--input', jsonlPath, '--output', output, '--llm-url', llm.url, '--rounds', '2', '--length-estimate', 'words', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, stderr.slice(-2000)).toBe(1);
    const summary = JSON.parse(stdout) as Awaited<ReturnType<typeof runAugment>>;
    const overTopic = corpus.lines.filter((l) => l.kind === 'over the topic limit');
    expect(summary.textsIn).toBe(corpus.good.length + overTopic.length);
    expect(summary.rejectedLines).toBe(corpus.bad.length - overTopic.length);
    checkFileRejects('ipt augment (JSONL)', jsonlPath, summary.rejects, fileRecords(corpus.lines), ['over the topic limit']);
    // Each reject is also said on stderr, as it happens.
    expect(stderr.split('\n').filter((l) => l.startsWith(`augment: rejected ${jsonlPath}:`))).toHaveLength(summary.rejectedLines);
    const out = readFileSync(output, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    expectVerbatim(out, [...corpus.good, ...overTopic].map((l) => l.text!), 'augment output');
  });

  it('ipt augment on Parquet: rejects every bad row by file and row, keeps every good text unchanged', async () => {
    const log: string[] = [];
    const output = join(dir, 'augmented-parquet.jsonl');
    const s = await runAugment({
      input: parquetPath,
      output,
      rounds: 2,
      llmUrl: llm.url,
      model: 'canned',
      maxModelLen: 4096,
      maxNewTokens: 400,
      lengthEstimate: 'words',
      temperature: 0,
      seed: 1,
      concurrency: 8,
      retries: 1,
      timeoutMs: 10_000,
      progress: false,
      log: (l) => log.push(l),
    });
    checkFileRejects('ipt augment (Parquet)', parquetPath, s.rejects, rowRecords(rows), ['over the topic limit']);
    const keep = rows.filter((r) => r.good);
    expect(s.textsIn).toBe(keep.length);
    const out = readFileSync(output, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    expectVerbatim(out, keep.map((r) => r.good!.text), 'augment Parquet output');
    // The one whose text starts with U+FEFF keeps it: a value's first character is not a byte-order mark.
    expect(out.some((t) => t.includes(`\ufeffStarts with U+FEFF.`))).toBe(true);
  });

  it('pipeline run on JSONL and Parquet: every bad record rejected by place, the good ones converted or kept raw, unchanged; the audit reconciles', async () => {
    const iso = isolated();
    // A text of 30 kB is within IPT_MAX_TEXT_BYTES but over this raw topic's limit.
    await lowerRawTopicLimit(iso.prefix);
    const flags = { 'llm-url': llm.url, rounds: '2', preset: 'from-scratch', 'convert-fraction': '0.5' };
    for (const [entry, path, records, good] of [
      ['pipeline run (JSONL)', jsonlPath, fileRecords(corpus.lines), corpus.good.map((l) => ({ id: l.id!, text: l.text! }))],
      ['pipeline run (Parquet)', parquetPath, rowRecords(rows), rows.filter((r) => r.kind === 'good').map((r) => r.good!)],
    ] as const) {
      const log: string[] = [];
      // The JSONL run also takes an evaluation file with bad lines of its own.
      const withEvaluation = entry === 'pipeline run (JSONL)';
      const s = await runOnStack(iso, path, flags, { log: (l) => log.push(l), ...(withEvaluation ? { evaluation: evaluationPath } : {}) });
      if (withEvaluation) checkEvaluationRejects(log, s.metricRows.evaluation);
      // The summary keeps 20 rejects; the log has each one.
      const rejects = log.filter((l) => l.startsWith('pipeline: rejected ')).map((l) => {
        const reason = l.slice('pipeline: rejected '.length);
        const m = /^.*?(?::(\d+):|: row (\d+):) /.exec(reason)!;
        return { line: Number(m[1] ?? m[2]), reason };
      });
      checkFileRejects(entry, path, rejects, [...records], []);
      expect(s.rejected).toBe(records.filter((r) => r.kind !== 'good').length);
      expect(s.ingested).toBe(good.length);
      expect(s.deadLettered).toBe(0);
      expect(s.augmented + s.raw).toBe(good.length);
      expect(s.augmented).toBeGreaterThan(0);
      expect(s.raw).toBeGreaterThan(0);
      const a = await audit(iso.prefix, iso.database, s.runId);
      expect(a, JSON.stringify(a)).toMatchObject({ texts: good.length, lost: 0, deadLettered: 0, ingestedTwice: 0, ok: true });
      expect(a.converted + a.raw).toBe(good.length);
      expectVerbatim(await pretrainingTextsOf(iso.prefix, s.runId), good.map((g) => g.text), `${entry}: the mixed stream`);
    }
  });

  describe('through ipt serve', () => {
    const iso = isolated();
    const TOKEN = 'poison-token-0123456789abcdef';
    let served: Served;
    let topics: PipelineTopics;

    beforeAll(async () => {
      topics = await lowerRawTopicLimit(iso.prefix);
      served = await serveOnStack(iso, { token: TOKEN, llmUrl: llm.url, withPipeline: true, limits: { maxRecords: 10_000, maxTextBytes: 1 << 20, bodyBytes: 64 << 20 } });
    });
    afterAll(async () => {
      await served?.close();
    });

    const post = (path: string, body: unknown) =>
      fetch(`${served.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
      });

    const openRun = async (runId: string): Promise<RunConfig> => {
      const res = await post('/v1/runs', { runId, preset: 'from-scratch', convertFraction: 0.5 });
      expect(res.status).toBe(201);
      return (await res.json()) as RunConfig;
    };

    /** Waits until every id is converted, kept raw or dead-lettered; returns the monitor's view. */
    async function follow(runId: string, ids: Set<string>) {
      const monitor = new RunMonitor(testKafka(), new AvroSerde(inject('stack').registryUrl), topics, runId);
      await monitor.start();
      try {
        await monitor.until(() => monitor.accounted(ids) === ids.size && monitor.mixedDomain() >= monitor.domainTexts(), 120_000, () => `${monitor.accounted(ids)}/${ids.size} records of ${runId} (e.g. ${monitor.unaccounted(ids).join(', ')})`);
        return { converted: new Set(monitor.convertedIds), raw: new Set(monitor.rawIds), deadLetters: new Map(monitor.deadLetters) };
      } finally {
        await monitor.stop();
      }
    }

    it('HTTP ingest: every bad record rejected by its index with its reason (a body no record can be read from: 400), accepted ids = good ids, all through the pipeline unchanged', async () => {
      const runId = 'poison-http';
      await openRun(runId);
      // The text rule's reasons are the files path's, without the place (an index says where).
      const sameAsFiles = (k: FileKind) => ({ re: () => FILE_REASON[k].re({ variant: '' }), label: `rejected by index: "${FILE_REASON[k].label}"` });
      const HTTP_REASON: Record<FileKind, { re: (l: PoisonLine) => RegExp; label: string }> = {
        'invalid JSON': { re: () => /JSON/, label: 'request refused, 400: body is not valid JSON' },
        'invalid UTF-8': { re: () => /^request body is not valid UTF-8$/, label: 'request refused, 400: "request body is not valid UTF-8"' },
        'not an object': { re: () => /^not a JSON object$/, label: 'rejected by index: "not a JSON object"' },
        'no text': { re: () => /^"text" is missing, not a string$/, label: 'rejected by index: ""text" is missing, not a string"' },
        'non-string text': { re: (l) => new RegExp(`^"text" is ${l.variant}, not a string$`), label: 'rejected by index: ""text" is <type>, not a string"' },
        'lone surrogate': sameAsFiles('lone surrogate'),
        NUL: sameAsFiles('NUL'),
        'over IPT_MAX_TEXT_BYTES': sameAsFiles('over IPT_MAX_TEXT_BYTES'),
        'over the topic limit': {
          re: () => new RegExp(`^the record is \\d+ bytes encoded; ${topics.raw.replace(/\./g, '\\.')} takes at most ${TOPIC_LIMIT_BYTES} bytes in a batch \\(max\\.message\\.bytes\\)$`),
          label: `rejected by index: "the record is N bytes encoded; <raw topic> takes at most ${TOPIC_LIMIT_BYTES} bytes in a batch (max.message.bytes)"`,
        },
        'id reused': { re: (l) => new RegExp(`^id "${l.id}" (appears twice in this request|already ingested into run "${runId}")$`), label: 'rejected by index: "id "X" appears twice in this request" or "… already ingested into run"' },
        'bad id': { re: () => /^"id" must be a string of 1–256 characters without whitespace, "\/", control characters or lone surrogates$/, label: 'rejected by index: ""id" must be a string of 1–256 characters without …"' },
      };
      const labelOf = (k: FileKind) => HTTP_REASON[k].label;

      // Records go in requests of up to 150, in file order; a line no record can be read from is a request of its own.
      const accepted: string[] = [];
      let batch: PoisonLine[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const sent = batch;
        batch = [];
        const res = await post(`/v1/runs/${runId}/texts`, { records: sent.map((l) => (l.http as { record: unknown }).record) });
        const a = (await res.json()) as { accepted: number; ids: string[]; rejected: { index: number; id?: string; reason: string }[] };
        expect([202, 422], JSON.stringify(a).slice(0, 300)).toContain(res.status);
        accepted.push(...a.ids);
        const byIndex = new Map(a.rejected.map((r) => [r.index, r.reason]));
        sent.forEach((l, index) => {
          const reason = byIndex.get(index);
          if (l.kind === 'good') {
            expect(reason, `${l.id}: a good record was rejected`).toBeUndefined();
            note('good', 'HTTP ingest', 'accepted (good)');
            return;
          }
          expect(reason, `line ${l.line} (${l.kind}, ${l.variant}) at index ${index} was not rejected`).toBeDefined();
          expect(reason, `line ${l.line} (${l.kind}, ${l.variant}) at index ${index}`).toMatch(HTTP_REASON[l.kind].re(l));
          note(l.kind, 'HTTP ingest', labelOf(l.kind), `[${index}] ${reason}`);
        });
        expect(a.rejected).toHaveLength(sent.filter((l) => l.kind !== 'good').length);
      };
      for (const l of corpus.lines) {
        if ('body' in l.http) {
          await flush();
          const res = await post(`/v1/runs/${runId}/texts`, l.http.body);
          expect(res.status, `line ${l.line} (${l.kind}, ${l.variant})`).toBe(400);
          const { error } = (await res.json()) as { error: string };
          expect(error, `line ${l.line} (${l.kind}, ${l.variant})`).toMatch(HTTP_REASON[l.kind as FileKind].re(l));
          note(l.kind, 'HTTP ingest', labelOf(l.kind as FileKind), `400 ${error}`);
          continue;
        }
        batch.push(l);
        if (batch.length >= 150) await flush();
      }
      await flush();
      expect(accepted.sort()).toEqual(corpus.good.map((l) => l.id!).sort());

      const ids = new Set(accepted);
      const seen = await follow(runId, ids);
      expect([...ids].filter((id) => seen.deadLetters.has(id))).toEqual([]);
      expect([...ids].filter((id) => !seen.converted.has(id) && !seen.raw.has(id))).toEqual([]);
      const a = await audit(iso.prefix, iso.database, runId);
      expect(a, JSON.stringify(a)).toMatchObject({ texts: corpus.good.length, lost: 0, deadLettered: 0, ok: true });
      expectVerbatim(await pretrainingTextsOf(iso.prefix, runId), corpus.good.map((l) => l.text!), 'HTTP: the mixed stream');
    });

    it('the raw-text topic: another producer’s undecodable records and tombstones are dead-lettered by templating with the reason, the good ones flow on; an incompatible schema and an oversized record are refused at the door', async () => {
      const runId = 'poison-topic';
      const run = await openRun(runId);
      const serde = new AvroSerde(inject('stack').registryUrl);
      const rawTextId = await serde.registerValueSchema(topics.raw, 'raw-text');
      const runConfigId = await serde.registerValueSchema(topics.runs, 'run-config');
      const rawSchema = loadSchema('raw-text');
      // An unrelated record type, registered under a subject of its own.
      const otherSchema = { type: 'record', name: 'Reading', namespace: 'poison', fields: [{ name: 'sensor', type: 'string' }, { name: 'value', type: 'double' }] };
      const { id: otherId } = await serde.registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(otherSchema) }, { subject: `${iso.prefix}.poison.readings-value` });
      const wire = (id: number, body: Buffer) => Buffer.concat([Buffer.from([0, id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]), body]);
      const records = poisonTopicRecords({
        rawTextId,
        encodeRaw: (id, text) => serde.encode(topics.raw, rawSchema, openRunRecord(run, { id, text, source: 'another-producer' })),
        otherSchemas: [
          { variant: 'a run configuration (run-config)', value: wire(runConfigId, loadSchema('run-config').type.toBuffer(run)) },
          { variant: 'an unrelated registered record', value: wire(otherId, avro.Type.forSchema(otherSchema as avro.Schema).toBuffer({ sensor: 's1', value: 21.5 })) },
        ],
      });
      expect(records.filter((r) => r.kind !== 'good')).toHaveLength(1000);
      const good = records.filter((r) => r.kind === 'good');

      const producer = testKafka().producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
      await producer.connect();
      const send = (rs: TopicPoison[]) => producer.send({ topic: topics.raw, acks: -1, messages: rs.map((r) => ({ key: recordKey(runId, r.id), value: r.value })) });
      try {
        // The first 180 good records with every bad one, in the generated order; the last 20 after the refusals below.
        const late = new Set(good.slice(-20));
        const early = records.filter((r) => !late.has(r));
        for (let i = 0; i < early.length; i += 200) await send(early.slice(i, i + 200));

        // A producer's schema that is not BACKWARD compatible with raw-text is refused by the registry under the topic's subject.
        const incompatible = readFileSync('test/fixtures/schemas/raw-text-incompatible.avsc', 'utf8');
        const refused = await serde.registry.register({ type: SchemaType.AVRO, schema: incompatible }, { subject: `${topics.raw}-value` }).then(
          () => undefined,
          (err: Error & { status?: number }) => err,
        );
        expect(refused, 'the registry took an incompatible schema').toBeDefined();
        expect(refused!.status).toBe(409);
        expect(refused!.message).toMatch(/incompatible/i);
        note('schema refused by the registry', 'raw-text topic', `refused at registration (HTTP ${refused!.status}): nothing written`, refused!.message);

        // A record over the topic's max.message.bytes is refused by the broker; the producer stays usable.
        const big: TopicPoison = { kind: 'good', variant: 'over the broker limit', id: 'topic-too-big', value: serde.encode(topics.raw, rawSchema, openRunRecord(run, { id: 'topic-too-big', text: 'x'.repeat(OVER_TOPIC_TEXT_BYTES), source: 'another-producer' })) };
        const tooBig = await send([big]).then(() => undefined, (err: Error) => err);
        expect(tooBig?.message).toMatch(/larger than the max message size/);
        note('record over the broker limit', 'raw-text topic', `refused by the broker (max.message.bytes ${TOPIC_LIMIT_BYTES}): nothing written`, tooBig!.message);

        await send([...late]);
      } finally {
        await producer.disconnect();
      }

      const ids = new Set(records.map((r) => r.id));
      const seen = await follow(runId, ids);
      for (const r of good) {
        expect(seen.deadLetters.has(r.id), `${r.id} was dead-lettered: ${seen.deadLetters.get(r.id)?.reason}`).toBe(false);
        expect(seen.converted.has(r.id) || seen.raw.has(r.id), `${r.id} did not come out`).toBe(true);
        note('good', 'raw-text topic', 'accepted (good): converted or kept raw');
      }

      // Each dead letter: the original key and bytes, the stage, the source offset, and a reason naming the kind.
      const offsets = new Map<string, string>();
      await scanToEnd(testKafka(), topics.raw, (messages, partition) => {
        for (const m of messages) if (m.key?.toString().startsWith(`${runId}/`)) offsets.set(m.key.toString(), `${partition}/${m.offset}`);
      });
      const letters = new Map<string, { value: Buffer | null; h: (n: string) => string }>();
      await scanToEnd(testKafka(), `${topics.prefix}.templating.dlq`, (messages) => {
        for (const m of messages) if (m.key?.toString().startsWith(`${runId}/`)) letters.set(m.key.toString(), { value: m.value, h: (n) => m.headers?.[n]?.toString() ?? '' });
      });
      const TOPIC_REASON: Record<(typeof TOPIC_KINDS)[number], { re: RegExp; label: string }> = {
        'not the wire format': { re: /^\w*Error: value is not in the schema-registry wire format \(magic byte 0 \+ schema id\)$/, label: 'value is not in the schema-registry wire format' },
        'body does not decode': { re: new RegExp(`^\\w*Error: Avro body does not decode with schema id ${rawTextId}: (truncated|\\d+ trailing bytes)$`), label: 'Avro body does not decode with schema id N: truncated | N trailing bytes' },
        'unknown schema id': { re: /^\w*Error: unknown schema id 200000000\d$/, label: 'unknown schema id N' },
        'another schema': { re: new RegExp(`^\\w*Error: schema id (${runConfigId}|${otherId}) cannot be read as .*raw-text\\.avsc: no alias found for (instructpt\\.RunConfig|poison\\.Reading)$`), label: 'schema id N cannot be read as raw-text.avsc' },
        tombstone: { re: /^\w*Error: record has no value \(tombstone\)$/, label: 'record has no value (tombstone)' },
      };
      for (const r of records.filter((x) => x.kind !== 'good')) {
        const key = recordKey(runId, r.id);
        const d = letters.get(key);
        expect(d, `${key} (${r.kind}, ${r.variant}) was not dead-lettered`).toBeDefined();
        expect(d!.h(DLQ_HEADERS.processor)).toBe(`${topics.prefix}.templating`);
        expect(d!.h(DLQ_HEADERS.stage)).toBe('decode');
        expect(d!.h(DLQ_HEADERS.topic)).toBe(topics.raw);
        expect(`${d!.h(DLQ_HEADERS.partition)}/${d!.h(DLQ_HEADERS.offset)}`).toBe(offsets.get(key));
        expect(d!.value === null ? null : Buffer.from(d!.value).equals(r.value!)).toBe(r.value === null ? null : true);
        const kind = r.kind as (typeof TOPIC_KINDS)[number];
        expect(d!.h(DLQ_HEADERS.reason), `${key} (${r.kind}, ${r.variant})`).toMatch(TOPIC_REASON[kind].re);
        note(kind, 'raw-text topic', `dead-lettered at <prefix>.templating (stage decode; key, bytes and source offset kept): "${TOPIC_REASON[kind].label}"`, `${key}: ${d!.h(DLQ_HEADERS.reason)}`);
      }
      expect(seen.deadLetters.size).toBe(1000);
    });

    /** A raw-text record as another producer writes it, in the wire format, under the run's key. */
    async function produceRaw(runId: string, values: { id: string; value: Buffer }[]) {
      const producer = testKafka().producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
      await producer.connect();
      try {
        await producer.send({ topic: topics.raw, acks: -1, messages: values.map((c) => ({ key: recordKey(runId, c.id), value: c.value })) });
      } finally {
        await producer.disconnect();
      }
    }

    it('the raw-text topic: a well-formed raw-text record that breaks the text rule (a NUL in its text or source, an id the rule refuses) is dead-lettered by templating with the rule’s reason; the good one beside it flows on', async () => {
      const runId = 'poison-topic-rule';
      const run = await openRun(runId);
      const serde = new AvroSerde(inject('stack').registryUrl);
      await serde.registerValueSchema(topics.raw, 'raw-text');
      const encode = (id: string, text: string, source = 'another-producer') => serde.encode(topics.raw, loadSchema('raw-text'), openRunRecord(run, { id, text, source }));
      const cases: { id: string; kind: string; value: Buffer; reason: RegExp }[] = [
        { id: 'rule-nul', kind: 'NUL', value: encode('rule-nul', 'in the \u0000 middle'), reason: /^raw text "rule-nul" refused by the text rule: "text" has a NUL character at character 7$/ },
        { id: 'rule-nul-end', kind: 'NUL', value: encode('rule-nul-end', 'at the end \u0000'), reason: /^raw text "rule-nul-end" refused by the text rule: "text" has a NUL character at character 11$/ },
        { id: 'rule space-in-id', kind: 'bad id', value: encode('rule space-in-id', 'a fine text under a bad id'), reason: /^raw text "rule space-in-id" refused by the text rule: "id" must be a string of 1–256 characters without whitespace, "\/", control characters or lone surrogates$/ },
        { id: 'rule-source', kind: 'NUL in source', value: encode('rule-source', 'a fine text', 'src\u0000'), reason: /^raw text "rule-source" refused by the text rule: "source" has a NUL character at character 3$/ },
      ];
      const good = { id: 'rule-good', text: 'A good text beside them, with a replacement character \ufffd of its own.' };
      await produceRaw(runId, [...cases, { id: good.id, value: encode(good.id, good.text) }]);
      const seen = await follow(runId, new Set([...cases.map((c) => c.id), good.id]));
      expect(seen.deadLetters.has(good.id), seen.deadLetters.get(good.id)?.reason).toBe(false);
      expect(seen.converted.has(good.id) || seen.raw.has(good.id)).toBe(true);

      const offsets = new Map<string, string>();
      await scanToEnd(testKafka(), topics.raw, (messages, partition) => {
        for (const m of messages) if (m.key?.toString().startsWith(`${runId}/`)) offsets.set(m.key.toString(), `${partition}/${m.offset}`);
      });
      const letters = new Map<string, (n: string) => string>();
      await scanToEnd(testKafka(), `${topics.prefix}.templating.dlq`, (messages) => {
        for (const m of messages) if (m.key?.toString().startsWith(`${runId}/`)) letters.set(m.key.toString(), (n) => m.headers?.[n]?.toString() ?? '');
      });
      for (const c of cases) {
        const d = seen.deadLetters.get(c.id);
        note(c.kind, 'raw-text topic', d ? `dead-lettered at <prefix>.templating (stage handler; key, bytes and source offset kept): the text rule's reason` : `NOT refused: ${seen.converted.has(c.id) ? 'converted' : 'kept raw'}`, d && `${c.id}: ${d.reason}`);
        expect(d?.reason ?? 'not dead-lettered', c.id).toMatch(c.reason);
        const h = letters.get(recordKey(runId, c.id))!;
        expect(h(DLQ_HEADERS.processor)).toBe(`${topics.prefix}.templating`);
        expect(h(DLQ_HEADERS.stage)).toBe('handler');
        expect(h(DLQ_HEADERS.topic)).toBe(topics.raw);
        expect(`${h(DLQ_HEADERS.partition)}/${h(DLQ_HEADERS.offset)}`).toBe(offsets.get(recordKey(runId, c.id)));
        // A converted text's failed result (and so its metric event) goes on in its stead; one kept raw has no outputs.
        const converted = openRunRecord(run, { id: c.id, text: '', source: '' }).convert;
        expect(h(DLQ_HEADERS.outputs), c.id).toBe(converted ? 'emitted' : 'none');
      }
      expect([...cases].filter((c) => seen.converted.has(c.id) || seen.raw.has(c.id)).map((c) => c.id)).toEqual([]);
      const a = await audit(iso.prefix, iso.database, runId);
      expect(a, JSON.stringify(a)).toMatchObject({ texts: cases.length + 1, lost: 0, deadLettered: cases.length, ok: true });
      expect((await pretrainingTextsOf(iso.prefix, runId)).some((t) => t.includes('\u0000'))).toBe(false);
    });

    // Avro decoding reads invalid UTF-8 in a string, and a lone surrogate as avsc itself writes it (ED A0 80), as
    // U+FFFD; the runtime's decoder counts them against the encoded U+FFFD and dead-letters the record at decode.
    it('the raw-text topic: invalid UTF-8 and a lone surrogate inside an Avro string are dead-lettered at decoding', async () => {
      const runId = 'poison-topic-utf8';
      const run = await openRun(runId);
      const serde = new AvroSerde(inject('stack').registryUrl);
      await serde.registerValueSchema(topics.raw, 'raw-text');
      const encode = (id: string, text: string) => serde.encode(topics.raw, loadSchema('raw-text'), openRunRecord(run, { id, text, source: 'another-producer' }));
      const broken = encode('rule-utf8', 'bad XX bytes');
      broken.fill(0xff, broken.indexOf('XX'), broken.indexOf('XX') + 2);
      const cases: { id: string; kind: FileKind; value: Buffer; reason: RegExp }[] = [
        { id: 'rule-utf8', kind: 'invalid UTF-8', value: broken, reason: /UTF-8/ },
        { id: 'rule-surrogate', kind: 'lone surrogate', value: encode('rule-surrogate', 'half \ud800 a pair'), reason: /UTF-8|surrogate/ },
      ];
      await produceRaw(runId, cases);
      const seen = await follow(runId, new Set(cases.map((c) => c.id)));
      for (const c of cases) {
        const d = seen.deadLetters.get(c.id);
        note(c.kind, 'raw-text topic', d ? `dead-lettered at ${d.stage}: "${d.reason}"` : `NOT refused (known gap: read as U+FFFD by Avro decoding): ${seen.converted.has(c.id) ? 'converted' : 'kept raw'}`);
      }
      for (const c of cases) expect(seen.deadLetters.get(c.id)?.reason ?? 'not dead-lettered', c.id).toMatch(c.reason);
    });
  });

  it.each(['staged', 'fused'] as Topology[])('the raw-text topic, %s, 2 rounds: records breaking the text rule are dead-lettered with the reason at their place; the round hand-over goes on without them and the run finishes with every other text out', async (topology) => {
    const iso = isolated();
    const values = { prefix: iso.prefix, 'length-estimate': 'words', partitions: '2', 'llm-url': llm.url, rounds: '2', 'convert-fraction': '0.75', topology };
    const { run, records } = planRun({ ...runSettings('test', values), runId: `poison-rule-${topology}` }, ruleCorpus(1, 40));
    const { records: written, broken } = breakTextRule(run, records);
    expect(run.roundSize).toBe(15);
    const log: string[] = [];
    const s = await executeRun(
      { pipeline: pipelineOptions('test', values, envFor(iso)), startStages: true, timeoutMs: 120_000, log: (l) => log.push(l), logger },
      { run, records: written, pool: [], expected: new Set(written.map((r) => r.id)), evaluations: [], rejects: [] },
    );
    const refused = new Map(broken.map((b) => [b.id, b]));
    const good = written.filter((r) => !refused.has(r.id));
    // The run finished (pipeline run's wait: every text accounted for, every metric event in ClickHouse) with the
    // refused texts dead-lettered and every other one converted or kept raw.
    expect(s.deadLettered, JSON.stringify(s.deadLetters)).toBe(broken.length);
    expect(new Set(s.deadLetters.map((d) => d.id))).toEqual(new Set(refused.keys()));
    expect(s.augmented + s.raw).toBe(good.length);
    expect(s.augmented).toBe(good.filter((r) => r.convert).length);

    const stage = `${iso.prefix}.${topology === 'staged' ? 'templating' : 'fused'}`;
    const topics = pipelineTopics(iso.prefix);
    const offsets = new Map<string, string>();
    await scanToEnd(testKafka(), topics.raw, (messages, partition) => {
      for (const m of messages) offsets.set(m.key!.toString(), `${partition}/${m.offset}`);
    });
    const letters = new Map<string, (n: string) => string>();
    await scanToEnd(testKafka(), `${stage}.dlq`, (messages) => {
      for (const m of messages) letters.set(m.key!.toString(), (n) => m.headers?.[n]?.toString() ?? '');
    });
    const PHRASE: Record<RuleKind, RegExp> = {
      NUL: /"text" has a NUL character at character \d+$/,
      'bad id': /"id" must be a string of 1–256 characters without whitespace, "\/", control characters or lone surrogates$/,
      'NUL in source': /"source" has a NUL character at character \d+$/,
    };
    for (const b of broken) {
      const key = recordKey(run.runId, b.id);
      const h = letters.get(key);
      expect(h, `${b.id} (${b.kind}, ${b.place}) was not dead-lettered by ${stage}`).toBeDefined();
      expect(h!(DLQ_HEADERS.reason).startsWith(`raw text ${JSON.stringify(b.id)} refused by the text rule: `), h!(DLQ_HEADERS.reason)).toBe(true);
      expect(h!(DLQ_HEADERS.reason), `${b.id} (${b.kind})`).toMatch(PHRASE[b.kind]);
      expect(h!(DLQ_HEADERS.processor)).toBe(stage);
      expect(h!(DLQ_HEADERS.stage)).toBe('handler');
      expect(h!(DLQ_HEADERS.topic)).toBe(topics.raw);
      expect(`${h!(DLQ_HEADERS.partition)}/${h!(DLQ_HEADERS.offset)}`).toBe(offsets.get(key));
      // A text with a place has a failed result in its stead (its metric event follows); one kept raw has no outputs.
      expect(h!(DLQ_HEADERS.outputs)).toBe(b.convert ? 'emitted' : 'none');
      note(b.kind, 'raw-text topic', `${topology}, 2 rounds: dead-lettered at <prefix>.${topology === 'staged' ? 'templating' : 'fused'} (stage handler): the text rule's reason; the hand-over goes on`, `${b.id}: ${h!(DLQ_HEADERS.reason)}`);
    }
    expect([...letters.keys()].filter((k) => !refused.has(k.slice(run.runId.length + 1))), 'other dead letters').toEqual([]);

    const a = await audit(iso.prefix, iso.database, run.runId);
    expect(a, JSON.stringify(a)).toMatchObject({ texts: written.length, lost: 0, deadLettered: broken.length, ingestedTwice: 0, ok: true });
    expect(a.converted + a.raw).toBe(good.length);
    const mixed = await pretrainingTextsOf(iso.prefix, run.runId);
    expectVerbatim(mixed, good.map((r) => r.text), `${topology}: the mixed stream`);
    expect(mixed.some((t) => t.includes('\u0000'))).toBe(false);

    // The hand-over around each refused place, from the mixed records' lineage: the collection a refused round-1
    // text would have continued came out on its own; the round-1 text at a refused round-0 text's place started anew.
    const lineage = await mixedLineage(iso.prefix, run.runId);
    const idAt = (round: number, position: number) => written.find((r) => r.convert && r.seq === seqOf(run, { round, position }))!.id;
    for (const position of [3, 7]) expect(lineage.get(idAt(0, position)), `round 0, position ${position}`).toEqual([idAt(0, position)]);
    for (const position of [1, 9]) expect(lineage.get(idAt(1, position)), `round 1, position ${position}`).toEqual([idAt(1, position)]);
  });
});
