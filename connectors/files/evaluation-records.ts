import { readFile } from 'node:fs/promises';
import type { EvaluationRecord } from '../../processors/pipeline/records.ts';
import { encodingProblem, idProblem, jsonKind } from '../../processors/templating/text-checks.ts';

type Parsed = { ok: true; record: Omit<EvaluationRecord, 'runId'> } | { ok: false; line: number; reason: string };

const isString = (v: unknown): v is string => typeof v === 'string';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads evaluation records from JSONL: {id?, dataset, seen, context, instruction, response | responses,
 * examples?: [{context, pairs: [{question, answer}]}]}. A bad line is reported with its number and reason, as the
 * text readers report theirs: bytes that are not UTF-8, a string that cannot be stored as given (a lone surrogate,
 * NUL), an id that breaks the id rule or names an earlier line's record. An id names one record's metric events
 * (their ClickHouse idempotency keys): a second record under it would replace the first one's rows.
 */
export async function readEvaluationRecords(path: string): Promise<Parsed[]> {
  const bytes = await readFile(path);
  const out: Parsed[] = [];
  const seen = new Map<string, number>();
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const bad = (reason: string) => out.push({ ok: false, line, reason: `${path}:${line}: ${reason}` });
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      bad('not valid UTF-8');
      continue;
    }
    if (s.trim() === '') continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(s);
    } catch (err) {
      bad(`not JSON (${(err as Error).message})`);
      continue;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) {
      bad('not a JSON object');
      continue;
    }
    const problem = recordProblem(o);
    if (problem !== undefined) {
      bad(problem);
      continue;
    }
    const id = isString(o.id) ? o.id : typeof o.id === 'number' ? String(o.id) : `eval-${line}`;
    if (seen.has(id)) {
      bad(`id "${id}" already used on line ${seen.get(id)}`);
      continue;
    }
    seen.set(id, line);
    const responses = (Array.isArray(o.responses) ? o.responses : [o.response]) as string[];
    const examples = (o.examples ?? []) as { context: string; pairs: { question: string; answer: string }[] }[];
    out.push({
      ok: true,
      record: {
        id,
        dataset: o.dataset as string,
        seen: o.seen === true,
        context: o.context as string,
        instruction: o.instruction as string,
        responses,
        examples: examples.map((e) => ({ context: e.context, pairs: e.pairs.map((p) => ({ question: p.question, answer: p.answer })) })),
      },
    });
  }
  return out;
}

/** Why a parsed line is not an evaluation record that can be stored as given, or undefined. */
function recordProblem(o: Record<string, unknown>): string | undefined {
  // As in the text files: a string, or a number taken as its decimal form.
  if (o.id !== undefined && o.id !== null && !isString(o.id) && !(typeof o.id === 'number' && Number.isFinite(o.id))) return `"id" is ${jsonKind(o.id)}; it must be a string or a number`;
  if (isString(o.id)) {
    const p = idProblem(o.id);
    if (p !== undefined) return p;
  }
  for (const f of ['dataset', 'context', 'instruction']) if (!isString(o[f])) return `"${f}" must be a string`;
  const responses = Array.isArray(o.responses) ? o.responses : o.response !== undefined ? [o.response] : [];
  if (responses.length === 0 || !responses.every(isString)) return '"response" (a string) or "responses" (strings) is required';
  const examples = o.examples ?? [];
  if (!Array.isArray(examples) || !examples.every((e) => isString(e?.context) && Array.isArray(e?.pairs) && e.pairs.every((p: { question?: unknown; answer?: unknown }) => isString(p?.question) && isString(p?.answer)))) {
    return '"examples" must be [{context, pairs: [{question, answer}]}]';
  }
  const strings: [string, string][] = [
    ['dataset', o.dataset as string],
    ['context', o.context as string],
    ['instruction', o.instruction as string],
    ...responses.map((r, i): [string, string] => [Array.isArray(o.responses) ? `responses[${i}]` : 'response', r as string]),
    ...(examples as { context: string; pairs: { question: string; answer: string }[] }[]).flatMap((e, i): [string, string][] => [
      [`examples[${i}].context`, e.context],
      ...e.pairs.flatMap((p, j): [string, string][] => [
        [`examples[${i}].pairs[${j}].question`, p.question],
        [`examples[${i}].pairs[${j}].answer`, p.answer],
      ]),
    ]),
  ];
  for (const [field, s] of strings) {
    const p = encodingProblem(field, s);
    if (p !== undefined) return p;
  }
  return undefined;
}
