import { seededRng, type Rng } from '../pretrain-text/seeded-random.ts';

/**
 * The LLM judge of synthesized pairs (docs/method.md §7.4): the paper's two questions — is the pair relevant to its
 * text, is the response accurate — and the pair's task category for the diversity analysis, asked of a strong LLM
 * and answered as a small JSON object. Pure: the prompt, the answer's grammar and JSON schema, the answer's parser,
 * the uniform sample and the rates' confidence intervals. The LLM call and the storage are elsewhere.
 */

/** Task categories a pair is labelled with (the paper reports 40+ finer ones; these are the families they fall in). */
export const JUDGE_CATEGORIES = [
  'reading comprehension',
  'commonsense reasoning',
  'natural language inference',
  'sentiment and opinion',
  'coreference',
  'math and quantitative reasoning',
  'code',
  'summarization',
  'struct-to-text',
  'information extraction',
  'classification',
  'paraphrase and rewriting',
  'open-ended generation',
  'other',
] as const;
export type JudgeCategory = (typeof JUDGE_CATEGORIES)[number];

export interface Judgement {
  relevant: boolean;
  accurate: boolean;
  category: JudgeCategory;
}

/** What the judge is shown: the text the pair was synthesized from, the instruction and the response. */
export interface JudgedPair {
  context: string;
  question: string;
  answer: string;
  /** The text is only its start (`context` holds its first characters): the judge is told so. */
  partial?: boolean;
}

/** The most of a text the judge is shown (about 6,000 tokens): a longer one is cut there and marked as partial. */
export const JUDGE_MAX_TEXT_CHARS = 24_000;

/**
 * The judge's prompt, for a completions endpoint: the text (cut at JUDGE_MAX_TEXT_CHARS, and then marked as its
 * start), the pair, the two questions and the categories, then an `### Answer` heading after which the judge
 * (guided by judgeGrammarGbnf or judgeJsonSchema) writes its JSON object.
 */
export function judgePrompt(p: JudgedPair): string {
  const cut = p.context.length > JUDGE_MAX_TEXT_CHARS;
  const text = cut ? p.context.slice(0, JUDGE_MAX_TEXT_CHARS) : p.context;
  return [
    'You are judging an instruction-response pair that was written automatically from a text.',
    '',
    cut || p.partial ? '### Text (only its beginning is shown)' : '### Text',
    text,
    '',
    '### Instruction',
    p.question,
    '',
    '### Response',
    p.answer,
    '',
    '### Questions',
    '1. relevant: is the instruction relevant to the text, i.e. can it be answered from the text or is it about the text?',
    '2. accurate: is the response accurate, i.e. a correct answer to the instruction given the text?',
    `3. category: which kind of task is the instruction? One of: ${JUDGE_CATEGORIES.join('; ')}.`,
    '',
    'Answer with one JSON object: {"relevant": true or false, "accurate": true or false, "category": "..."}',
    '',
    '### Answer',
    '',
  ].join('\n');
}

const gbnfString = (s: string) => `"\\"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}\\""`;

/** A GBNF grammar (llama.cpp's `grammar`) that admits exactly the judge's JSON objects. */
export function judgeGrammarGbnf(): string {
  return [
    'root ::= "{" ws "\\"relevant\\"" ws ":" ws bool ws "," ws "\\"accurate\\"" ws ":" ws bool ws "," ws "\\"category\\"" ws ":" ws category ws "}"',
    'bool ::= "true" | "false"',
    `category ::= ${JUDGE_CATEGORIES.map(gbnfString).join(' | ')}`,
    'ws ::= [ ]?',
    '',
  ].join('\n');
}

/** The same answer as a JSON schema (vLLM's `guided_json`, llama.cpp server's `json_schema`). */
export function judgeJsonSchema(): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['relevant', 'accurate', 'category'],
    properties: { relevant: { type: 'boolean' }, accurate: { type: 'boolean' }, category: { type: 'string', enum: [...JUDGE_CATEGORIES] } },
  };
}

/**
 * The judge's answer read strictly: the first JSON object in the text with the three fields and their types (a
 * category outside the list is an error, not "other", so a judge that ignores the grammar is seen). Returns the
 * judgement or the reason it cannot be read.
 */
export function parseJudgement(text: string): Judgement | { error: string } {
  const start = text.indexOf('{');
  const end = text.indexOf('}', start);
  if (start < 0 || end < 0) return { error: 'no JSON object in the answer' };
  let o: unknown;
  try {
    o = JSON.parse(text.slice(start, end + 1));
  } catch (err) {
    return { error: `the answer's JSON does not parse: ${(err as Error).message}` };
  }
  const r = o as Record<string, unknown>;
  if (typeof r.relevant !== 'boolean') return { error: '"relevant" is not true or false' };
  if (typeof r.accurate !== 'boolean') return { error: '"accurate" is not true or false' };
  if (typeof r.category !== 'string' || !(JUDGE_CATEGORIES as readonly string[]).includes(r.category)) return { error: `"category" ${JSON.stringify(r.category)} is not one of the categories` };
  return { relevant: r.relevant, accurate: r.accurate, category: r.category as JudgeCategory };
}

/** A rate with its 95% Wilson score interval: honest for small samples and rates near 0 or 1, where the normal one is not. */
export interface Rate {
  successes: number;
  n: number;
  rate: number;
  low: number;
  high: number;
}

export function wilsonInterval(successes: number, n: number, z = 1.959963984540054): Rate {
  if (n === 0) return { successes, n, rate: 0, low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // The interval's ends at 0 and 1 exactly where they belong, not a rounding error away.
  return { successes, n, rate: p, low: successes === 0 ? 0 : Math.max(0, centre - half), high: successes === n ? 1 : Math.min(1, centre + half) };
}

export type JudgeGuide = 'gbnf' | 'json' | 'off';

/** The request fields that guide the judge's answer to its JSON object (a GBNF grammar, a JSON schema, or none). */
export function judgeGuide(mode: JudgeGuide): Record<string, unknown> {
  if (mode === 'gbnf') return { grammar: judgeGrammarGbnf() };
  // vLLM's and llama.cpp server's names for a JSON schema to decode to (ipt serve-llm takes the grammar only).
  if (mode === 'json') return { guided_json: judgeJsonSchema(), json_schema: judgeJsonSchema() };
  return {};
}

/** A verdict's id: one per run, round, text, pair and judge model, so judging a pair again replaces its row. */
export const judgementId = (runId: string, round: number, recordId: string, pairIndex: number, judgeModel: string) => `${runId}/${round}/${recordId}/${pairIndex}/${judgeModel}`;

/**
 * A uniform sample of at most k items from a stream of unknown length (Vitter's algorithm R), seeded so that the same
 * stream gives the same sample: each item seen ends up kept with probability k / seen.
 */
export class Reservoir<T> {
  readonly items: T[] = [];
  seen = 0;
  private readonly rng: Rng;

  constructor(
    readonly k: number,
    seed: string | number,
  ) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`reservoir size ${k}: expected a whole number ≥ 1`);
    this.rng = seededRng(seed);
  }

  offer(item: T): void {
    this.seen++;
    if (this.items.length < this.k) {
      this.items.push(item);
      return;
    }
    const j = this.rng.int(this.seen);
    if (j < this.k) this.items[j] = item;
  }
}
