import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { TuningExample } from '../../processors/synthesizer-data/tuning-sequences.ts';
import type { QAPair } from '../../processors/templating/synthesizer-format.ts';

/** Field names of a layout of one record per question (`--map dataset=…,context=…,question=…,answer=…`). */
export interface FieldMap {
  dataset?: string;
  context: string;
  question: string;
  answer: string;
}

/** `dataset=title,context=passage,question=q,answer=answers.text`: dotted names reach into nested objects. */
export function parseFieldMap(raw: string): FieldMap {
  const m: Record<string, string> = {};
  for (const part of raw.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    if (!k || !v || !['dataset', 'context', 'question', 'answer'].includes(k)) throw new Error(`--map: "${part}" is not one of dataset=…, context=…, question=…, answer=…`);
    m[k] = v;
  }
  for (const need of ['context', 'question', 'answer']) if (!m[need]) throw new Error(`--map: ${need}=FIELD is missing`);
  return m as unknown as FieldMap;
}

/** A bad record, named by file and line (JSONL) or row (Parquet). */
export interface BadRecord {
  where: string;
  reason: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const isString = (v: unknown): v is string => typeof v === 'string';

function field(o: Record<string, unknown>, path: string): unknown {
  let v: unknown = o;
  for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** The answer of a one-question record: a string, or the first of a list (SQuAD's answers.text). */
function answerOf(v: unknown): string | undefined {
  if (isString(v)) return v;
  if (Array.isArray(v) && v.length > 0 && isString(v[0])) return v[0];
  return undefined;
}

/** One question of a layout that has one record per question, before grouping by context. */
interface Question {
  dataset: string;
  context: string;
  pair: QAPair;
}

/** What one record is: a whole example (this project's layout), one question (SQuAD, or mapped), or why neither. */
function recordOf(o: Record<string, unknown>, fileDataset: string, map: FieldMap | undefined): TuningExample | Question | string {
  if (map) {
    const dataset = map.dataset ? field(o, map.dataset) : fileDataset;
    const context = field(o, map.context);
    const question = field(o, map.question);
    const answer = answerOf(field(o, map.answer));
    if (!isString(dataset) || dataset === '') return `no dataset name in "${map.dataset}"`;
    if (!isString(context)) return `"${map.context}" is not a string`;
    if (!isString(question) || question === '') return `"${map.question}" is not a non-empty string`;
    if (answer === undefined) return `"${map.answer}" is neither a string nor a list of strings`;
    return { dataset, context, pair: { question, answer } };
  }
  if ('pairs' in o) {
    if (!isString(o.dataset) || o.dataset === '') return '"dataset" is not a non-empty string';
    if (!isString(o.context)) return '"context" is not a string';
    if (!Array.isArray(o.pairs) || o.pairs.length === 0) return '"pairs" is not a non-empty list';
    const pairs: QAPair[] = [];
    for (const [i, p] of o.pairs.entries()) {
      const q = p !== null && typeof p === 'object' ? (p as Record<string, unknown>) : {};
      if (!isString(q.question) || q.question === '' || !isString(q.answer)) return `pairs[${i}] is not {"question": string, "answer": string}`;
      pairs.push({ question: q.question, answer: q.answer });
    }
    return { dataset: o.dataset, context: o.context, pairs };
  }
  if ('question' in o && 'answers' in o) {
    // SQuAD: {title?, context, question, answers: {text: [...], answer_start: [...]}}; the dataset is the file's name.
    const answer = answerOf(field(o, 'answers.text'));
    if (!isString(o.context)) return '"context" is not a string';
    if (!isString(o.question) || o.question === '') return '"question" is not a non-empty string';
    if (answer === undefined) return '"answers.text" has no answer';
    return { dataset: isString(o.dataset) && o.dataset !== '' ? o.dataset : fileDataset, context: o.context, pair: { question: o.question, answer } };
  }
  return 'neither {"dataset", "context", "pairs"} nor a SQuAD record {"context", "question", "answers"} (use --map for other layouts)';
}

async function* jsonObjects(path: string): AsyncGenerator<{ where: string; value?: Record<string, unknown>; problem?: string }> {
  const bytes = await readFile(path);
  let start = 0;
  for (let line = 1; start < bytes.length; line++) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const where = `${path}:${line}`;
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      yield { where, problem: 'not valid UTF-8' };
      continue;
    }
    if (s.trim() === '') continue;
    try {
      const v: unknown = JSON.parse(s);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) yield { where, problem: 'not a JSON object' };
      else yield { where, value: v as Record<string, unknown> };
    } catch (err) {
      yield { where, problem: `not JSON (${(err as Error).message})` };
    }
  }
}

async function* parquetObjects(path: string): AsyncGenerator<{ where: string; value?: Record<string, unknown>; problem?: string }> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const total = Number(metadata.num_rows);
  for (let from = 0; from < total; from += 10_000) {
    const rows = await parquetReadObjects({ file, metadata, rowStart: from, rowEnd: Math.min(total, from + 10_000) });
    for (const [i, value] of rows.entries()) yield { where: `${path}: row ${from + i + 1}`, value };
  }
}

/**
 * Reads context-based task datasets for tuning the synthesizer from JSONL or Parquet files: records
 * {"dataset", "context", "pairs": [{"question", "answer"}]}; SQuAD records (one question each, `answers.text`), the
 * file's name standing for the dataset unless the record names one; or any layout of one question per record through
 * a field map. Questions of one dataset that share a context are one example, in the order the context first
 * appears. A record that cannot be read is reported with its file and line (or row) and left out.
 */
export async function readTuningExamples(paths: readonly string[], map: FieldMap | undefined, onBad: (b: BadRecord) => void): Promise<TuningExample[]> {
  const examples: TuningExample[] = [];
  const grouped = new Map<string, TuningExample>();
  for (const path of paths) {
    const ext = extname(path).toLowerCase();
    if (ext !== '.jsonl' && ext !== '.json' && ext !== '.ndjson' && ext !== '.parquet') throw new Error(`${path}: unsupported input format "${ext}" (use .jsonl or .parquet)`);
    const fileDataset = basename(path, extname(path));
    for await (const r of ext === '.parquet' ? parquetObjects(path) : jsonObjects(path)) {
      if (!r.value) {
        onBad({ where: r.where, reason: r.problem! });
        continue;
      }
      const rec = recordOf(r.value, fileDataset, map);
      if (typeof rec === 'string') onBad({ where: r.where, reason: rec });
      else if ('pairs' in rec) examples.push(rec);
      else {
        const key = `${rec.dataset}\u0000${rec.context}`;
        const had = grouped.get(key);
        if (had) had.pairs.push(rec.pair);
        else {
          const e: TuningExample = { dataset: rec.dataset, context: rec.context, pairs: [rec.pair] };
          grouped.set(key, e);
          examples.push(e);
        }
      }
    }
  }
  return examples;
}
