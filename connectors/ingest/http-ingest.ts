import { randomUUID } from 'node:crypto';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { openRunRecord } from './run-ingest.ts';

export interface IngestLimits {
  /** Records per request at most. */
  maxRecords: number;
  /** Bytes of one text (UTF-8) at most. */
  maxTextBytes: number;
}

export interface Rejected {
  index: number;
  id?: string;
  reason: string;
}

/**
 * Validates one HTTP ingest batch ({records: [{id?, text, source?}]}) for an open run: each record is accepted as a
 * raw-text record or rejected with its index and reason; one bad record never takes the others down.
 */
export function validateIngestBatch(run: RunConfig, body: unknown, limits: IngestLimits, now = Date.now()): { accepted: RawTextRecord[]; rejected: Rejected[] } | { error: string } {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { records?: unknown }).records)) return { error: 'body must be a JSON object {"records": [{"id"?, "text", "source"?}, …]}' };
  const records = (body as { records: unknown[] }).records;
  if (records.length === 0) return { error: 'no records' };
  if (records.length > limits.maxRecords) return { error: `${records.length} records in one request; at most ${limits.maxRecords}` };
  const accepted: RawTextRecord[] = [];
  const rejected: Rejected[] = [];
  const ids = new Set<string>();
  records.forEach((r, index) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return rejected.push({ index, reason: 'not a JSON object' });
    const o = r as Record<string, unknown>;
    const id = o.id === undefined ? `http-${randomUUID()}` : o.id;
    if (typeof id !== 'string' || !/^[^\s/]{1,256}$/.test(id)) return rejected.push({ index, reason: '"id" must be a string of 1–256 characters without whitespace or "/"' });
    if (ids.has(id)) return rejected.push({ index, id, reason: `id "${id}" appears twice in this request` });
    if (typeof o.text !== 'string') return rejected.push({ index, id, reason: `"text" is ${o.text === undefined ? 'missing' : o.text === null ? 'null' : typeof o.text}, not a string` });
    if (o.text.trim() === '') return rejected.push({ index, id, reason: '"text" is empty' });
    const bytes = Buffer.byteLength(o.text, 'utf8');
    if (bytes > limits.maxTextBytes) return rejected.push({ index, id, reason: `"text" is ${bytes} bytes; at most ${limits.maxTextBytes}` });
    if (o.source !== undefined && typeof o.source !== 'string') return rejected.push({ index, id, reason: '"source" must be a string' });
    ids.add(id);
    accepted.push(openRunRecord(run, { id, text: o.text, source: (o.source as string | undefined) ?? 'http' }, now));
  });
  return { accepted, rejected };
}
