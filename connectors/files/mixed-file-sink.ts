import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { JsonlWriter } from './jsonl-writer.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';

/**
 * Writes a run's mixed training stream to a file in mix order: JSONL (one object per line) or Parquet (columns id,
 * source, source_id, text, tokens, mix_index), by the file's extension.
 */
export async function writeMixedFile(path: string, records: Iterable<MixedTextRecord>): Promise<number> {
  const rows = [...records].sort((a, b) => a.mixIndex - b.mixIndex);
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet') {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: rows.map((r) => r.id), type: 'STRING' },
        { name: 'run_id', data: rows.map((r) => r.runId), type: 'STRING' },
        { name: 'source', data: rows.map((r) => r.source), type: 'STRING' },
        { name: 'source_id', data: rows.map((r) => r.sourceId), type: 'STRING' },
        { name: 'text', data: rows.map((r) => r.text), type: 'STRING' },
        { name: 'tokens', data: rows.map((r) => BigInt(r.tokens)), type: 'INT64' },
        { name: 'mix_index', data: rows.map((r) => BigInt(r.mixIndex)), type: 'INT64' },
      ],
    });
    writeFileSync(path, Buffer.from(buf));
    return rows.length;
  }
  if (ext !== '.jsonl' && ext !== '.json' && ext !== '.ndjson') throw new Error(`${path}: unsupported output format "${ext}" (use .jsonl or .parquet)`);
  const out = new JsonlWriter(path);
  for (const r of rows) await out.write({ id: r.id, runId: r.runId, source: r.source, sourceId: r.sourceId, text: r.text, tokens: r.tokens, mixIndex: r.mixIndex });
  await out.close();
  return rows.length;
}
