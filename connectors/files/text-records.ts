import { createReadStream } from 'node:fs';
import { basename, extname } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { maxTextBytes, textProblem } from '../ingest/text-checks.ts';

/** One input record: accepted with its text, or rejected with where and why. Nothing is dropped silently. */
export type TextRecord = { ok: true; id: string; text: string; line: number } | { ok: false; line: number; reason: string };

/**
 * Reads texts from JSONL (one object per line with a `text` field), Parquet (a `text` column), or JSONL on stdin (`-`).
 * A text that breaks the shared text rule (text-checks.ts: lone surrogates, NUL, above maxBytes) is rejected by line.
 */
export function readTextRecords(path: string, maxBytes = maxTextBytes()): AsyncGenerator<TextRecord> {
  if (path === '-') return readJsonl(path, maxBytes);
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet') return readParquet(path, maxBytes);
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') return readJsonl(path, maxBytes);
  throw new Error(`${path}: unsupported input format "${ext}" (use .jsonl or .parquet)`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Splits a byte stream on \n without decoding first, so each line's UTF-8 is validated on its own. */
async function* byteLines(path: string): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of (path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 })) as AsyncIterable<Buffer>) {
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf(10, start)) >= 0) {
      yield buf.subarray(start, nl);
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
    buf = rest;
  }
  if (rest.length) yield rest;
}

export function recordId(value: unknown, file: string, line: number): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return `${file === '-' ? 'stdin' : basename(file)}:${line}`;
}

async function* readJsonl(path: string, maxBytes: number): AsyncGenerator<TextRecord> {
  let line = 0;
  for await (const bytes of byteLines(path)) {
    line++;
    let s: string;
    try {
      s = utf8.decode(bytes);
    } catch {
      yield { ok: false, line, reason: `${path}:${line}: not valid UTF-8` };
      continue;
    }
    if (s.endsWith('\r')) s = s.slice(0, -1);
    if (s.trim() === '') continue; // blank lines separate nothing in JSONL
    let obj: unknown;
    try {
      obj = JSON.parse(s);
    } catch (err) {
      yield { ok: false, line, reason: `${path}:${line}: not JSON (${(err as Error).message})` };
      continue;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      yield { ok: false, line, reason: `${path}:${line}: not a JSON object` };
      continue;
    }
    const text = (obj as Record<string, unknown>).text;
    if (text === undefined) {
      yield { ok: false, line, reason: `${path}:${line}: no "text" field` };
      continue;
    }
    if (typeof text !== 'string') {
      yield { ok: false, line, reason: `${path}:${line}: "text" is ${text === null ? 'null' : typeof text}, not a string` };
      continue;
    }
    const problem = textProblem(text, maxBytes);
    if (problem) {
      yield { ok: false, line, reason: `${path}:${line}: ${problem}` };
      continue;
    }
    yield { ok: true, id: recordId((obj as Record<string, unknown>).id, path, line), text, line };
  }
}

async function* readParquet(path: string, maxBytes: number): AsyncGenerator<TextRecord> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const names = new Set(metadata.schema.map((s) => s.name));
  if (!names.has('text')) throw new Error(`${path}: Parquet file has no "text" column (columns: ${[...names].slice(1).join(', ')})`);
  const columns = names.has('id') ? ['text', 'id'] : ['text'];
  const total = Number(metadata.num_rows);
  const step = 10_000;
  for (let start = 0; start < total; start += step) {
    const rows = await parquetReadObjects({ file, metadata, columns, rowStart: start, rowEnd: Math.min(total, start + step) });
    for (let i = 0; i < rows.length; i++) {
      const row = start + i + 1;
      const text = rows[i]!.text;
      const problem = typeof text === 'string' ? textProblem(text, maxBytes) : undefined;
      if (typeof text !== 'string') yield { ok: false, line: row, reason: `${path}: row ${row}: "text" is ${text === null || text === undefined ? 'null' : typeof text}, not a string` };
      else if (problem) yield { ok: false, line: row, reason: `${path}: row ${row}: ${problem}` };
      else yield { ok: true, id: recordId(rows[i]!.id, path, row), text, line: row };
    }
  }
}
