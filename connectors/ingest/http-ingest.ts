import { randomUUID } from 'node:crypto';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { openRunRecord } from './run-plan.ts';
import { encodingProblem, idProblem, jsonKind, textProblem } from '../../processors/templating/text-checks.ts';
import type { RunIds } from './http-run-ids.ts';

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
 * raw-text record or rejected with its index and reason; one bad record never takes the others down. `indices`
 * holds each accepted record's index in the request. With `seen`, an id the run has already taken in is rejected,
 * and so is every new id beyond the room it has left.
 */
export function validateIngestBatch(
  run: RunConfig,
  body: unknown,
  limits: IngestLimits,
  now = Date.now(),
  seen?: RunIds,
): { accepted: RawTextRecord[]; indices: number[]; rejected: Rejected[] } | { error: string } {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { records?: unknown }).records)) return { error: 'body must be a JSON object {"records": [{"id"?, "text", "source"?}, …]}' };
  const records = (body as { records: unknown[] }).records;
  if (records.length === 0) return { error: 'no records' };
  if (records.length > limits.maxRecords) return { error: `${records.length} records in one request; at most ${limits.maxRecords}` };
  const accepted: RawTextRecord[] = [];
  const indices: number[] = [];
  const rejected: Rejected[] = [];
  const ids = new Set<string>();
  let room = seen?.room() ?? Infinity;
  records.forEach((r, index) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return rejected.push({ index, reason: 'not a JSON object' });
    const o = r as Record<string, unknown>;
    const given = o.id === undefined ? `http-${randomUUID()}` : o.id;
    const badId = idProblem(given);
    if (badId !== undefined) return rejected.push({ index, reason: badId });
    const id = given as string; // idProblem passes strings only
    if (ids.has(id)) return rejected.push({ index, id, reason: `id "${id}" appears twice in this request` });
    if (seen?.has(id)) return rejected.push({ index, id, reason: `id "${id}" already ingested into run "${run.runId}"` });
    if (typeof o.text !== 'string') return rejected.push({ index, id, reason: `"text" is ${jsonKind(o.text)}, not a string` });
    // An open run gives a text no place in rounds: an empty one would only be counted, so it is refused here.
    if (o.text.trim() === '') return rejected.push({ index, id, reason: '"text" is empty' });
    const problem = textProblem(o.text, limits.maxTextBytes);
    if (problem !== undefined) return rejected.push({ index, id, reason: problem });
    if (o.source !== undefined && typeof o.source !== 'string') return rejected.push({ index, id, reason: `"source" is ${jsonKind(o.source)}, not a string` });
    const badSource = o.source === undefined ? undefined : encodingProblem('source', o.source);
    if (badSource !== undefined) return rejected.push({ index, id, reason: badSource });
    if (room <= 0) return rejected.push({ index, id, reason: `run "${run.runId}" has taken in ${seen!.bound} ids through this server, the most it remembers per run (IPT_MAX_RUN_IDS): open a new run` });
    room--;
    ids.add(id);
    indices.push(index);
    accepted.push(openRunRecord(run, { id, text: o.text, source: (o.source as string | undefined) ?? 'http' }, now));
  });
  return { accepted, indices, rejected };
}
