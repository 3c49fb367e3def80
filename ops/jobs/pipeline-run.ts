import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { readEvaluationRecords } from '../../connectors/files/evaluation-records.ts';
import { TextFilePlan } from '../../connectors/files/text-file-plan.ts';
import { TextFileScan, type Reject } from '../../connectors/files/text-file-scan.ts';
import type { InputText } from '../../connectors/ingest/run-plan.ts';
import { messageLimits } from '../../connectors/ingest/message-limits.ts';
import type { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { ensurePipelineTopics } from '../pipeline/start-pipeline.ts';
import type { EvaluationRecord } from '../../processors/pipeline/records.ts';
import type { PipelineRunOptions } from './pipeline-run-options.ts';
import type { PipelineRunSummary } from './run-summary.ts';
import { execute } from './run-execution.ts';

export type { PipelineRunOptions } from './pipeline-run-options.ts';
export type { PipelineRunSummary } from './run-summary.ts';
export type { RunInput } from './planned-run.ts';
export { executeRun } from './run-execution.ts';

function assertOutputFormat(path: string): void {
  if (!['.jsonl', '.json', '.ndjson', '.parquet'].includes(extname(path).toLowerCase())) throw new Error(`--output ${path}: use a .jsonl or .parquet file`);
}

/** Rejects as the summary names them: all counted, the first 20 by line kept. */
class FirstRejects {
  count = 0;
  readonly first: Reject[] = [];
  add(r: Reject): void {
    this.count++;
    if (this.first.length === 20 && r.line >= this.first[19]!.line) return;
    const at = this.first.findIndex((x) => x.line > r.line);
    this.first.splice(at < 0 ? this.first.length : at, 0, r);
    if (this.first.length > 20) this.first.pop();
  }
}

/**
 * stdin's JSONL copied to a temporary file: a run reads its input twice (to count and check the texts, then to write
 * them), and holds neither the texts nor their ids in between.
 */
async function stdinCopy(): Promise<{ path: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-stdin-'));
  const path = join(dir, 'stdin.jsonl');
  await pipe(process.stdin, createWriteStream(path));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The bounded form of the pipeline: ingests a file as one run, runs the chain over Kafka until every text of the
 * run is accounted for (converted, kept raw, or dead-lettered), the mixed stream holds every domain text and
 * ClickHouse holds every metric event, then returns one summary. The input is read twice and streamed into the raw
 * topic in batches; the run is followed by text slots and counts, and the mixed stream goes to --output as it
 * arrives: memory does not grow with the input but by a few dozen bytes a text (docs/memory.md).
 */
export async function runPipeline(opts: PipelineRunOptions): Promise<PipelineRunSummary> {
  const started = Date.now();
  const runId = opts.settings.runId ?? `run-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  // A missing file or an unknown format fails here, before any topic is touched.
  for (const path of [opts.input, opts.general]) {
    if (path === undefined || path === '-') continue;
    readTextRecords(path);
    await access(path);
  }
  const copies: { path: string; remove: () => void }[] = [];
  const from = async (path: string | undefined) => (path === '-' ? (copies[copies.push(await stdinCopy()) - 1]!.path) : undefined);
  try {
    const inputFrom = await from(opts.input);
    const rejects = new FirstRejects();
    const plan = await TextFilePlan.create(opts.input, { ...opts.settings, runId }, {
      limit: await rawTopicLimit(opts),
      from: inputFrom,
      onReject: (r) => {
        rejects.add(r);
        opts.log(`pipeline: rejected ${r.reason}`);
      },
    });
    const general = opts.general === undefined ? undefined : await TextFileScan.run(opts.general, { from: await from(opts.general), onReject: (r) => opts.log(`pipeline: general instructions: rejected ${r.reason}`) });
    const evaluations: EvaluationRecord[] = [];
    if (opts.evaluation) {
      for (const e of await readEvaluationRecords(opts.evaluation)) {
        if (e.ok) evaluations.push({ ...e.record, runId });
        else opts.log(`pipeline: evaluation: rejected ${e.reason}`);
      }
    }
    if (opts.output) assertOutputFormat(opts.output);
    const run = plan.run;
    return await execute(
      opts,
      {
        run,
        texts: plan,
        expected: plan.ingested,
        records: plan.ingested,
        converted: plan.converted,
        writeTexts: async (writer) => {
          for await (const batch of plan.batches()) await writer.writeTexts(batch, run);
        },
        writeGeneral: general && ((writer) => writeGeneralFile(writer, runId, general)),
        pool: [],
        evaluations,
        rejected: rejects.count,
        rejects: rejects.first,
      },
      started,
    );
  } finally {
    for (const c of copies) c.remove();
  }
}

/** General instructions in batches, in file order, all with one ingest time (as one write would give them). */
async function writeGeneralFile(writer: PipelineWriter, runId: string, scan: TextFileScan): Promise<void> {
  const now = Date.now();
  let batch: InputText[] = [];
  for await (const r of scan.records()) {
    if (scan.dead.get(r.slot)) continue;
    batch.push({ id: r.id, text: r.text, source: `${scan.path}:${r.line}` });
    if (batch.length === 2000) {
      await writer.writeGeneral(runId, batch, now);
      batch = [];
    }
  }
  if (batch.length > 0) await writer.writeGeneral(runId, batch, now);
}

/** The raw topic's max.message.bytes (texts above it are rejected by line before the run is planned). */
async function rawTopicLimit(opts: PipelineRunOptions): Promise<number | undefined> {
  const topics = await ensurePipelineTopics({ ...opts.pipeline, logger: opts.logger });
  const admin = createKafka({ brokers: opts.pipeline.runtime.brokers, clientId: `${opts.pipeline.runtime.clientId}-run`, logger: opts.logger }).admin();
  await admin.connect();
  const limits = await messageLimits(admin, [topics.raw]).finally(() => admin.disconnect());
  return limits.get(topics.raw);
}
