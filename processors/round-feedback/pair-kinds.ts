import type { QAPair } from '../templating/synthesizer-format.ts';

export const COT_QUESTION_SUFFIX = "\nLet's think step by step.";
export const COT_ANSWER_MARKER = '\nTherefore, the answer is ';
export const MC_OPTIONS_MARKER = '\nOptions:\n- ';
const MC_OPTION_SEPARATOR = '\n- ';

export type PairKind = 'free' | 'mc' | 'cot' | 'mc-cot' | 'malformed-cot';

/** A pair with its kind read from its text (docs/method.md §2.4) and the parts that templates need. */
export interface TypedPair extends QAPair {
  kind: PairKind;
  /** The question without the CoT suffix and without the options block. */
  stem: string;
  options?: string[];
  rationale?: string;
  /** The answer proper: the final answer for CoT, the whole answer otherwise. */
  finalAnswer: string;
}

const NONE_OF_THESE = /^(none of (these|the above|them|the options)|no(ne)? (correct )?(answer|option)s?( is correct)?|(it is )?not possible to (tell|determine)|cannot be determined|it is impossible to (say|tell))\.?$/i;

export function isNoneOfThese(answer: string): boolean {
  return NONE_OF_THESE.test(answer.trim());
}

export function classifyPair(pair: QAPair): TypedPair {
  const showsCot = pair.question.endsWith(COT_QUESTION_SUFFIX) || pair.answer.includes(COT_ANSWER_MARKER);
  let question = pair.question;
  let finalAnswer = pair.answer;
  let rationale: string | undefined;
  let cot = false;
  if (showsCot) {
    const parts = pair.answer.split(COT_ANSWER_MARKER);
    if (!pair.question.endsWith(COT_QUESTION_SUFFIX) || parts.length !== 2 || parts[0]!.trim() === '' || parts[1]!.trim() === '') {
      return { question: pair.question, answer: pair.answer, kind: 'malformed-cot', stem: pair.question, finalAnswer: pair.answer };
    }
    cot = true;
    question = pair.question.slice(0, -COT_QUESTION_SUFFIX.length);
    rationale = parts[0]!.trim();
    finalAnswer = parts[1]!.trim();
  }
  const at = question.indexOf(MC_OPTIONS_MARKER);
  if (at >= 0) {
    const options = question.slice(at + MC_OPTIONS_MARKER.length).split(MC_OPTION_SEPARATOR).map((o) => o.trim());
    const answer = finalAnswer.trim();
    if (options.every((o) => o !== '') && (options.includes(answer) || isNoneOfThese(answer))) {
      return { question: pair.question, answer: pair.answer, kind: cot ? 'mc-cot' : 'mc', stem: question.slice(0, at), options, rationale, finalAnswer: answer };
    }
  }
  return { question: pair.question, answer: pair.answer, kind: cot ? 'cot' : 'free', stem: question, rationale, finalAnswer };
}
