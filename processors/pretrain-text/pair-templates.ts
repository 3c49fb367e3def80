import type { TypedPair } from '../round-feedback/pair-kinds.ts';
import type { Rng } from './seeded-random.ts';

/** Question/answer prefix families; the question and answer are joined by one of the family's delimiters. */
export const QA_FAMILIES = [
  { name: 'question-answer', q: 'Question: ', a: 'Answer: ' },
  { name: 'q-a', q: 'Q: ', a: 'A: ' },
  { name: 'input-output', q: 'Input: ', a: 'Output: ' },
  { name: 'problem-solution', q: 'Problem: ', a: 'Solution: ' },
  { name: 'query-response', q: 'Query: ', a: 'Response: ' },
  { name: 'instruction-response', q: 'Instruction: ', a: 'Response: ' },
  { name: 'question-answer-block', q: 'Question:\n', a: 'Answer:\n' },
  { name: 'q.-a.', q: 'Q. ', a: 'A. ' },
  { name: 'task-answer', q: 'Task: ', a: 'Answer: ' },
  { name: 'prompt-completion', q: 'Prompt: ', a: 'Completion: ' },
  { name: 'ask-reply', q: 'Ask: ', a: 'Reply: ' },
  { name: 'markdown-heading', q: '### Question\n', a: '### Answer\n' },
  { name: 'markdown-bold', q: '**Question:** ', a: '**Answer:** ' },
  { name: 'quiz', q: 'Quiz: ', a: 'Correct answer: ' },
  { name: 'exercise-solution', q: 'Exercise: ', a: 'Solution: ' },
  { name: 'plain', q: '', a: '' },
] as const;
export type QAFamily = (typeof QA_FAMILIES)[number];

export const QA_DELIMITERS = ['\n', '\n\n', ' '] as const;

/** Option label styles; `labelled` styles rewrite the answer to the label. */
export const OPTION_STYLES = [
  { name: 'A.', label: (i: number) => `${letter(i)}.`, ref: (i: number) => letter(i) },
  { name: '(A)', label: (i: number) => `(${letter(i)})`, ref: (i: number) => `(${letter(i)})` },
  { name: 'A)', label: (i: number) => `${letter(i)})`, ref: (i: number) => letter(i) },
  { name: '[A]', label: (i: number) => `[${letter(i)}]`, ref: (i: number) => `[${letter(i)}]` },
  { name: 'a.', label: (i: number) => `${letter(i).toLowerCase()}.`, ref: (i: number) => letter(i).toLowerCase() },
  { name: '(a)', label: (i: number) => `(${letter(i).toLowerCase()})`, ref: (i: number) => `(${letter(i).toLowerCase()})` },
  { name: '1.', label: (i: number) => `${i + 1}.`, ref: (i: number) => String(i + 1) },
  { name: '(1)', label: (i: number) => `(${i + 1})`, ref: (i: number) => `(${i + 1})` },
  { name: '1)', label: (i: number) => `${i + 1})`, ref: (i: number) => String(i + 1) },
  { name: 'i.', label: (i: number) => `${roman(i + 1)}.`, ref: (i: number) => roman(i + 1) },
  { name: '(i)', label: (i: number) => `(${roman(i + 1)})`, ref: (i: number) => `(${roman(i + 1)})` },
  { name: 'Option A:', label: (i: number) => `Option ${letter(i)}:`, ref: (i: number) => `Option ${letter(i)}` },
  { name: 'A:', label: (i: number) => `${letter(i)}:`, ref: (i: number) => letter(i) },
  { name: '-', label: () => '-', ref: undefined },
  { name: '*', label: () => '*', ref: undefined },
  { name: '+', label: () => '+', ref: undefined },
] as const;
export type OptionStyle = (typeof OPTION_STYLES)[number];

export const OPTION_HEADINGS = ['Options:', 'Choices:', 'Select from the following.', 'Pick your answer from:', 'Possible answers:', 'Choose from:', 'Available options:', 'Answer choices:', ''] as const;
/** How a labelled answer is written: the label alone, the label and the option, or a sentence. */
export const LABELLED_ANSWER_FORMS = [(ref: string) => ref, (ref: string, opt: string) => `${ref} ${opt}`, (ref: string, opt: string) => `${ref}: ${opt}`, (ref: string) => `The answer is ${ref}.`] as const;

export const COT_CUES = [
  "Let's think step by step.",
  'Think step by step.',
  "Let's think first.",
  'Explain your reasoning.',
  'Show your reasoning, then answer.',
  'Work it out step by step.',
  'Give the rationale, then the answer.',
  'Reason first, then give the final answer.',
] as const;
export const COT_CONCLUSIONS = [
  (a: string) => `Therefore, the answer is ${a}`,
  (a: string) => `So the answer is ${a}`,
  (a: string) => `The answer is ${a}`,
  (a: string) => `Thus, the final answer is ${a}`,
  (a: string) => `Final answer: ${a}`,
  (a: string) => `So, the answer: ${a}`,
  (a: string) => `Hence: ${a}`,
  (a: string) => `This means the answer is ${a}`,
] as const;

export interface PairStyle {
  optionStyle: number;
  optionHeading: number;
  optionsInline: boolean;
  labelledAnswerForm: number;
  cotCue: number;
  cotConclusion: number;
}

/** Draws the per-text style of multiple-choice and chain-of-thought rendering. */
export function drawPairStyle(rng: Rng): PairStyle {
  return {
    optionStyle: rng.int(OPTION_STYLES.length),
    optionHeading: rng.int(OPTION_HEADINGS.length),
    optionsInline: rng.chance(0.2),
    labelledAnswerForm: rng.int(LABELLED_ANSWER_FORMS.length),
    cotCue: rng.int(COT_CUES.length),
    cotConclusion: rng.int(COT_CONCLUSIONS.length),
  };
}

export interface RenderedPair {
  question: string;
  answer: string;
}

/** A pair's question and answer text (options, CoT cue, rationale and conclusion included), before prefixes. */
export function renderPair(pair: TypedPair, style: PairStyle, rng: Rng): RenderedPair {
  let question = pair.stem;
  let answer = pair.finalAnswer;
  if ((pair.kind === 'mc' || pair.kind === 'mc-cot') && pair.options) {
    const os = OPTION_STYLES[style.optionStyle]!;
    const shuffled = rng.shuffle(pair.options);
    const labels = shuffled.map((_, i) => os.label(i));
    const lines = shuffled.map((o, i) => `${labels[i]} ${o}`);
    const heading = OPTION_HEADINGS[style.optionHeading]!;
    const block = style.optionsInline ? lines.join(' ') : lines.join('\n');
    question = `${question}\n${heading ? `${heading}\n` : ''}${block}`;
    const at = shuffled.indexOf(pair.finalAnswer);
    // Rewrite the answer to its label only when labels tell options apart; "none of these" answers stay as written.
    // (A sentence form would read badly inside a CoT conclusion, so CoT answers use the short forms.)
    const form = pair.kind === 'mc-cot' ? style.labelledAnswerForm % 3 : style.labelledAnswerForm;
    if (os.ref && at >= 0) answer = LABELLED_ANSWER_FORMS[form]!(os.ref(at), shuffled[at]!);
  }
  if ((pair.kind === 'cot' || pair.kind === 'mc-cot') && pair.rationale) {
    question = `${question}\n${COT_CUES[style.cotCue]}`;
    answer = `${pair.rationale}\n${withStop(COT_CONCLUSIONS[style.cotConclusion]!(answer))}`;
  }
  return { question, answer };
}

function withStop(s: string): string {
  return /[.!?。]$/.test(s) ? s : `${s}.`;
}

function letter(i: number): string {
  return i < 26 ? String.fromCharCode(65 + i) : `${String.fromCharCode(65 + Math.floor(i / 26) - 1)}${String.fromCharCode(65 + (i % 26))}`;
}

function roman(n: number): string {
  const table: [number, string][] = [[1000, 'm'], [900, 'cm'], [500, 'd'], [400, 'cd'], [100, 'c'], [90, 'xc'], [50, 'l'], [40, 'xl'], [10, 'x'], [9, 'ix'], [5, 'v'], [4, 'iv'], [1, 'i']];
  let out = '';
  for (const [v, s] of table) while (n >= v) (out += s), (n -= v);
  return out;
}
