import { createReadStream } from 'node:fs';
import { basename, extname } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { idProblem, jsonKind, textProblem } from '../../processors/templating/text-checks.ts';
import { maxTextBytes } from '../ingest/max-text-bytes.ts';

/** One input record: accepted with its text, or rejected with where and why. Nothing is dropped silently. */
export type TextRecord = { ok: true; id: string; text: string; line: number } | { ok: false; line: number; reason: string };

/**
 * Reads texts from JSONL (one object per line with a `text` field), Parquet (a `text` column), or JSONL on stdin (`-`).
 * A text that breaks the shared text rule (processors/templating/text-checks.ts: empty, lone surrogates, NUL, above maxBytes), or an id that
 * breaks the shared id rule, is rejected by line, as HTTP ingest rejects it by index.
 */
export function readTextRecords(path: string, maxBytes = maxTextBytes(), from?: string): AsyncGenerator<TextRecord> {
  // `from`: stdin's JSONL already copied to a file, read again under the name "-" (a run reads its input twice).
  if (path === '-') return readJsonl(path, maxBytes, from);
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet') return readParquet(path, maxBytes);
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') return readJsonl(path, maxBytes);
  throw new Error(`${path}: unsupported input format "${ext}" (use .jsonl or .parquet)`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Splits a byte stream on \n without decoding first, so each line's UTF-8 is validated on its own. */
async function* byteLines(path: string, from?: string): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  const source = from !== undefined ? createReadStream(from, { highWaterMark: 1 << 20 }) : path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  for await (const chunk of source as AsyncIterable<Buffer>) {
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

/**
 * A record's id: a string as given, a number (JSON, or a Parquet integer column's bigint) as its decimal form, or —
 * when there is none — the file's name and line. Anything else is refused rather than replaced by the line, which
 * would hide it.
 */
export function recordId(value: unknown, file: string, line: number): { id: string } | { problem: string } {
  if (value === undefined || value === null) return { id: `${file === '-' ? 'stdin' : basename(file)}:${line}` };
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') return { id: String(value) };
  if (typeof value !== 'string') return { problem: `"id" is ${jsonKind(value)}; it must be a string or a number` };
  const problem = idProblem(value);
  return problem === undefined ? { id: value } : { problem };
}

async function* readJsonl(path: string, maxBytes: number, from?: string): AsyncGenerator<TextRecord> {
  let line = 0;
  for await (const bytes of byteLines(path, from)) {
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
      yield { ok: false, line, reason: `${path}:${line}: "text" is ${jsonKind(text)}, not a string` };
      continue;
    }
    const problem = textProblem(text, maxBytes);
    if (problem) {
      yield { ok: false, line, reason: `${path}:${line}: ${problem}` };
      continue;
    }
    const id = recordId((obj as Record<string, unknown>).id, path, line);
    if ('problem' in id) {
      yield { ok: false, line, reason: `${path}:${line}: ${id.problem}` };
      continue;
    }
    yield { ok: true, id: id.id, text, line };
  }
}

/** A string column's bytes that are not UTF-8, kept apart so that the row is rejected, not read with U+FFFD. */
class NotUtf8 {}

/** A value is the string itself: a leading U+FEFF is part of it, not a byte-order mark to drop. */
const utf8Value = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes Parquet strings strictly (hyparquet's default decoder replaces invalid bytes with U+FFFD). */
const strictStrings = {
  stringFromBytes(bytes: Uint8Array | undefined): string | NotUtf8 | undefined {
    if (bytes === undefined) return undefined;
    try {
      return utf8Value.decode(bytes);
    } catch {
      return new NotUtf8();
    }
  },
};

async function* readParquet(path: string, maxBytes: number): AsyncGenerator<TextRecord> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const names = new Set(metadata.schema.map((s) => s.name));
  if (!names.has('text')) throw new Error(`${path}: Parquet file has no "text" column (columns: ${[...names].slice(1).join(', ')})`);
  const columns = names.has('id') ? ['text', 'id'] : ['text'];
  const total = Number(metadata.num_rows);
  const step = 10_000;
  for (let start = 0; start < total; start += step) {
    const rows = await parquetReadObjects({ file, metadata, columns, rowStart: start, rowEnd: Math.min(total, start + step), parsers: strictStrings });
    for (let i = 0; i < rows.length; i++) {
      const row = start + i + 1;
      const { text, id: rawId } = rows[i]!;
      const bad = (reason: string): TextRecord => ({ ok: false, line: row, reason: `${path}: row ${row}: ${reason}` });
      if (text instanceof NotUtf8) yield bad('"text" is not valid UTF-8');
      else if (typeof text !== 'string') yield bad(`"text" is ${jsonKind(text ?? null)}, not a string`);
      else if (rawId instanceof NotUtf8) yield bad('"id" is not valid UTF-8');
      else {
        const problem = textProblem(text, maxBytes);
        const id = recordId(rawId, path, row);
        if (problem) yield bad(problem);
        else if ('problem' in id) yield bad(id.problem);
        else yield { ok: true, id: id.id, text, line: row };
      }
    }
  }
}
