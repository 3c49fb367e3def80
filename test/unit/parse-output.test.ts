import { describe, expect, it } from 'vitest';
import { classifyPair, parseSynthesizerOutput } from 'instruct-pt';

const qa = (text: string) => parseSynthesizerOutput(text).map((p) => [p.question, p.answer]);

describe('parseSynthesizerOutput (docs/method.md §2, exact)', () => {
  it('parses well-formed pairs', () => {
    expect(qa('<QUE> What is 2+2? <ANS> 4 </END>\n\n<QUE> Capital of France? <ANS> Paris </END>')).toEqual([
      ['What is 2+2?', '4'],
      ['Capital of France?', 'Paris'],
    ]);
  });
  it('drops an unfinished last pair', () => {
    expect(qa('<QUE> A? <ANS> a </END>\n\n<QUE> B? <ANS> b')).toEqual([['A?', 'a']]);
  });
  it('keeps the last pair when the output ends with </END>', () => {
    expect(qa('<QUE> A? <ANS> a </END>')).toEqual([['A?', 'a']]);
  });
  it('skips pieces with no <ANS> or more than one', () => {
    expect(qa('<QUE> A? </END><QUE> B? <ANS> b <ANS> c </END><QUE> C? <ANS> c </END>')).toEqual([['C?', 'c']]);
  });
  it('skips a question part that does not start with <QUE>', () => {
    expect(qa('junk <QUE> A? <ANS> a </END>\n\n<QUE> B? <ANS> b </END>')).toEqual([['B?', 'b']]);
  });
  it('skips an empty answer', () => {
    expect(qa('<QUE> A? <ANS>   </END><QUE> B? <ANS> b </END>')).toEqual([['B?', 'b']]);
  });
  it('removes every <QUE> from the question and strips it', () => {
    expect(qa('<QUE> <QUE> A?<QUE>  <ANS> a </END>')).toEqual([['A?', 'a']]);
  });
  it('de-duplicates questions case-insensitively, keeping the first', () => {
    expect(qa('<QUE> Who? <ANS> first </END><QUE> WHO? <ANS> second </END><QUE> who?  <ANS> third </END>')).toEqual([['Who?', 'first']]);
  });
  it('strips with Python str.strip() semantics (\\x1c is whitespace there)', () => {
    expect(qa('<QUE> A?\x1c <ANS> \x85a\u3000 </END>')).toEqual([['A?', 'a']]);
  });
  it('returns nothing for empty or tag-free output', () => {
    expect(qa('')).toEqual([]);
    expect(qa('no tags at all')).toEqual([]);
  });
});

describe('pair kinds (docs/method.md §2.4)', () => {
  it('reads a free-form pair', () => {
    expect(classifyPair({ question: 'Why?', answer: 'Because.' }).kind).toBe('free');
  });
  it('reads chain-of-thought', () => {
    const p = classifyPair({ question: "How many?\nLet's think step by step.", answer: 'Two plus one.\nTherefore, the answer is 3' });
    expect(p).toMatchObject({ kind: 'cot', stem: 'How many?', rationale: 'Two plus one.', finalAnswer: '3' });
  });
  it('marks CoT that shows a marker but is malformed', () => {
    expect(classifyPair({ question: "How many?\nLet's think step by step.", answer: 'just 3' }).kind).toBe('malformed-cot');
    expect(classifyPair({ question: 'How many?', answer: 'x\nTherefore, the answer is 3' }).kind).toBe('malformed-cot');
    expect(classifyPair({ question: "Q\nLet's think step by step.", answer: '\nTherefore, the answer is 3' }).kind).toBe('malformed-cot');
  });
  it('reads multiple choice with the answer among the options', () => {
    const p = classifyPair({ question: 'Colour of the sky?\nOptions:\n- blue\n- green', answer: 'blue' });
    expect(p).toMatchObject({ kind: 'mc', stem: 'Colour of the sky?', options: ['blue', 'green'], finalAnswer: 'blue' });
  });
  it('accepts a none-of-these answer for multiple choice', () => {
    expect(classifyPair({ question: 'Q?\nOptions:\n- a\n- b', answer: 'None of the above' }).kind).toBe('mc');
  });
  it('treats options with an answer outside them as free-form', () => {
    expect(classifyPair({ question: 'Q?\nOptions:\n- a\n- b', answer: 'c' }).kind).toBe('free');
  });
  it('reads MC + CoT', () => {
    const p = classifyPair({ question: "Q?\nOptions:\n- yes\n- no\nLet's think step by step.", answer: 'Because.\nTherefore, the answer is yes' });
    expect(p).toMatchObject({ kind: 'mc-cot', options: ['yes', 'no'], finalAnswer: 'yes', rationale: 'Because.' });
  });
});
