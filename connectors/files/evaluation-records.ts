import { readFile } from 'node:fs/promises';
import type { EvaluationRecord } from '../../processors/pipeline/records.ts';

type Parsed = { ok: true; record: Omit<EvaluationRecord, 'runId'> } | { ok: false; line: number; reason: string };

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * Reads evaluation records from JSONL: {id?, dataset, seen, context, instruction, response | responses,
 * examples?: [{context, pairs: [{question, answer}]}]}. A bad line is reported with its number and reason.
 */
export async function readEvaluationRecords(path: string): Promise<Parsed[]> {
  const lines = (await readFile(path, 'utf8')).split('\n');
  const out: Parsed[] = [];
  lines.forEach((s, i) => {
    const line = i + 1;
    if (s.trim() === '') return;
    const bad = (reason: string) => out.push({ ok: false, line, reason: `${path}:${line}: ${reason}` });
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(s);
    } catch (err) {
      return bad(`not JSON (${(err as Error).message})`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return bad('not a JSON object');
    for (const f of ['dataset', 'context', 'instruction']) if (!isString(o[f])) return bad(`"${f}" must be a string`);
    const responses = Array.isArray(o.responses) ? o.responses : o.response !== undefined ? [o.response] : [];
    if (responses.length === 0 || !responses.every(isString)) return bad('"response" (a string) or "responses" (strings) is required');
    const examples = o.examples ?? [];
    if (!Array.isArray(examples) || !examples.every((e) => isString(e?.context) && Array.isArray(e?.pairs) && e.pairs.every((p: { question?: unknown; answer?: unknown }) => isString(p?.question) && isString(p?.answer)))) {
      return bad('"examples" must be [{context, pairs: [{question, answer}]}]');
    }
    out.push({
      ok: true,
      record: {
        id: isString(o.id) && o.id ? o.id : `eval-${line}`,
        dataset: o.dataset as string,
        seen: o.seen === true,
        context: o.context as string,
        instruction: o.instruction as string,
        responses: responses as string[],
        examples: examples.map((e: { context: string; pairs: { question: string; answer: string }[] }) => ({ context: e.context, pairs: e.pairs.map((p) => ({ question: p.question, answer: p.answer })) })),
      },
    });
  });
  return out;
}
