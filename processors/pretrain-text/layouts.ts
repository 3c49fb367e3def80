import { QA_DELIMITERS, QA_FAMILIES, type RenderedPair } from './pair-templates.ts';
import type { Rng } from './seeded-random.ts';

export const LAYOUTS = ['classic', 'dialog', 'numbered', 'inline-few-shot', 'next-turn-dialog'] as const;
export type Layout = (typeof LAYOUTS)[number];

/** Draw weights; the last three need every entry of the text to have at least two pairs. */
export const LAYOUT_WEIGHTS: Readonly<Record<Layout, number>> = Object.freeze({ classic: 86, dialog: 6, numbered: 3, 'inline-few-shot': 2.5, 'next-turn-dialog': 2.5 });
export const INVERTED_PROBABILITY = 0.05;

export const TEXT_OPENINGS = [
  '',
  'Read the following text and answer the questions.\n\n',
  'Article:\n',
  'Passage: ',
  'Context:\n',
  'Read this article:\n',
  'Here is a text:\n',
  'Text:\n',
  'Document:\n',
  'Background:\n',
  'Consider the following passage.\n\n',
  'Use the passage below to answer the questions.\n\n',
] as const;
export const TEXT_TRANSITIONS = [
  '\n\n',
  '\n\nAnswer the following questions based on the text above.\n\n',
  '\n\nBased on the passage, answer:\n',
  '\n\nQuestions about the text:\n\n',
  '\n\nNow answer these questions:\n',
  '\n\nRespond to the following.\n\n',
  '\n',
] as const;
/** For the inverted order: what precedes the questions, and what leads from them to the text. */
export const INVERTED_INTROS = ['', 'Answer the questions using the text that follows.\n\n', 'Questions first, then the passage they are about.\n\n', 'Keep these questions in mind while reading.\n\n'] as const;
export const INVERTED_TRANSITIONS = ['\n\n', '\n\nText:\n', '\n\nThe passage:\n', '\n\nRefer to this article:\n', '\n\nContext:\n'] as const;
export const PAIR_SEPARATORS = ['\n\n', '\n', '\n\n\n'] as const;
export const FEW_SHOT_SEPARATORS = ['\n\n\n', '\n\n', '\n\n---\n\n', '\n\n###\n\n', '\n\n\n\n', '\n\n* * *\n\n'] as const;
export const DIALOG_SPEAKERS = [
  ['User', 'Assistant'],
  ['Person A', 'Person B'],
  ['Student', 'Teacher'],
  ['Human', 'AI'],
  ['Speaker 1', 'Speaker 2'],
  ['Customer', 'Agent'],
  ['Interviewer', 'Expert'],
  ['Reader', 'Author'],
] as const;
export const DIALOG_INTROS = ['', 'Here is a conversation about the text above.\n', 'Dialogue:\n', 'A conversation based on the passage:\n', 'Chat:\n'] as const;
export const NUMBERED_HEADINGS = [
  ['Questions:', 'Answers:'],
  ['Answer each question.', 'Answer key:'],
  ['Questions about the text:', 'Solutions:'],
  ['Q:', 'A:'],
] as const;
export const NUMBER_STYLES = [(i: number) => `${i + 1}.`, (i: number) => `${i + 1})`, (i: number) => `(${i + 1})`, (i: number) => `#${i + 1}`] as const;
export const INLINE_EXAMPLE_HEADINGS = ['Here are some examples.', 'Worked examples:', 'Solved examples:', 'Examples:', 'Some questions with their answers:'] as const;
export const INLINE_TEST_HEADINGS = ['Now answer this one:', 'Your turn:', 'Test:', 'Next question:', 'Now try this:'] as const;
export const NEXT_TURN_ASKS = ['What should the next reply be?', 'Predict the next turn.', 'Continue the dialogue with the next response.', 'Write the next message.', 'Give the next turn of the conversation.'] as const;

/** Everything drawn once per pre-training text, so its blocks share one look. */
export interface TextStyle {
  layout: Layout;
  inverted: boolean;
  family: number;
  delimiter: number;
  pairSeparator: number;
  fewShotSeparator: number;
  opening: number;
  transition: number;
  invertedIntro: number;
  invertedTransition: number;
  speakers: number;
  dialogIntro: number;
  numberedHeading: number;
  numberStyle: number;
  inlineExamples: number;
  inlineTest: number;
  nextTurnAsk: number;
}

/** The layouts a text with a single-pair entry can take. */
const SINGLE_PAIR_LAYOUT_WEIGHTS = Object.freeze({ classic: LAYOUT_WEIGHTS.classic, dialog: LAYOUT_WEIGHTS.dialog }) as Readonly<Record<Layout, number>>;

export function drawTextStyle(rng: Rng, multiPair: boolean): TextStyle {
  const weights = multiPair ? LAYOUT_WEIGHTS : SINGLE_PAIR_LAYOUT_WEIGHTS;
  const family = rng.int(QA_FAMILIES.length);
  return {
    layout: rng.weighted(weights),
    inverted: rng.chance(INVERTED_PROBABILITY),
    family,
    // A same-line delimiter needs a visible answer prefix to stay readable.
    delimiter: QA_FAMILIES[family]!.a === '' ? 0 : rng.int(QA_DELIMITERS.length),
    pairSeparator: rng.int(PAIR_SEPARATORS.length),
    fewShotSeparator: rng.int(FEW_SHOT_SEPARATORS.length),
    opening: rng.int(TEXT_OPENINGS.length),
    transition: rng.int(TEXT_TRANSITIONS.length),
    invertedIntro: rng.int(INVERTED_INTROS.length),
    invertedTransition: rng.int(INVERTED_TRANSITIONS.length),
    speakers: rng.int(DIALOG_SPEAKERS.length),
    dialogIntro: rng.int(DIALOG_INTROS.length),
    numberedHeading: rng.int(NUMBERED_HEADINGS.length),
    numberStyle: rng.int(NUMBER_STYLES.length),
    inlineExamples: rng.int(INLINE_EXAMPLE_HEADINGS.length),
    inlineTest: rng.int(INLINE_TEST_HEADINGS.length),
    nextTurnAsk: rng.int(NEXT_TURN_ASKS.length),
  };
}

function qa(style: TextStyle, p: RenderedPair): string {
  const f = QA_FAMILIES[style.family]!;
  return `${f.q}${p.question}${QA_DELIMITERS[style.delimiter]}${f.a}${p.answer}`;
}

/** The pairs block of one entry in the text's layout. */
export function renderPairsBlock(style: TextStyle, pairs: RenderedPair[]): string {
  const sep = PAIR_SEPARATORS[style.pairSeparator]!;
  switch (style.layout) {
    case 'classic':
      return pairs.map((p) => qa(style, p)).join(sep);
    case 'dialog': {
      const [s1, s2] = DIALOG_SPEAKERS[style.speakers]!;
      return DIALOG_INTROS[style.dialogIntro] + pairs.map((p) => `${s1}: ${p.question}\n${s2}: ${p.answer}`).join('\n');
    }
    case 'numbered': {
      const [qh, ah] = NUMBERED_HEADINGS[style.numberedHeading]!;
      const num = NUMBER_STYLES[style.numberStyle]!;
      const qs = pairs.map((p, i) => `${num(i)} ${p.question}`).join('\n');
      const as = pairs.map((p, i) => `${num(i)} ${p.answer}`).join('\n');
      return `${qh}\n${qs}\n\n${ah}\n${as}`;
    }
    case 'inline-few-shot': {
      const shots = pairs.slice(0, -1).map((p) => qa(style, p)).join(sep);
      return `${INLINE_EXAMPLE_HEADINGS[style.inlineExamples]}\n${shots}${sep}${INLINE_TEST_HEADINGS[style.inlineTest]}\n${qa(style, pairs[pairs.length - 1]!)}`;
    }
    case 'next-turn-dialog': {
      const [s1, s2] = DIALOG_SPEAKERS[style.speakers]!;
      const history = pairs.slice(0, -1).map((p) => `${s1}: ${p.question}\n${s2}: ${p.answer}`).join('\n');
      const last = pairs[pairs.length - 1]!;
      return `${history}\n${s1}: ${last.question}\n\n${NEXT_TURN_ASKS[style.nextTurnAsk]}\n${s2}: ${last.answer}`;
    }
  }
}

/** One reading-comprehension block: the raw text verbatim with its pairs, in the drawn order. */
export function renderBlock(style: TextStyle, context: string, pairs: RenderedPair[]): string {
  const block = renderPairsBlock(style, pairs);
  if (style.inverted) return `${INVERTED_INTROS[style.invertedIntro]}${block}${INVERTED_TRANSITIONS[style.invertedTransition]}${context}`;
  return `${TEXT_OPENINGS[style.opening]}${context}${TEXT_TRANSITIONS[style.transition]}${block}`;
}
