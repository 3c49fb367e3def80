import { describe, expect, it } from 'vitest';
import { formatEvaluationPrompt, formatExample, formatPairs, formatSynthesizerInput } from 'instruct-pt';

describe('synthesizer formats (docs/method.md §1, exact)', () => {
  it('wraps a text in <s> <CON> … </CON> and a blank line', () => {
    expect(formatSynthesizerInput('Paris is in France.')).toBe('<s> <CON> Paris is in France. </CON>\n\n');
  });
  it('is just <s> for an empty text', () => {
    expect(formatSynthesizerInput('')).toBe('<s>');
  });
  it('keeps the text verbatim, whitespace included', () => {
    expect(formatSynthesizerInput('  a\n\nb  ')).toBe('<s> <CON>   a\n\nb   </CON>\n\n');
  });
  it('formats pairs with single spaces around tags, joined by a blank line, no trailing separator', () => {
    expect(formatPairs([{ question: 'Q1?', answer: 'A1' }, { question: 'Q2?', answer: 'A2' }])).toBe('<QUE> Q1? <ANS> A1 </END>\n\n<QUE> Q2? <ANS> A2 </END>');
    expect(formatPairs([])).toBe('');
  });
  it('formats a few-shot example as input + pairs + </s>', () => {
    expect(formatExample('T', [{ question: 'Q', answer: 'A' }])).toBe('<s> <CON> T </CON>\n\n<QUE> Q <ANS> A </END></s>');
  });
  it('formats the evaluation prompt with the gold instruction', () => {
    expect(formatEvaluationPrompt('T', 'What?')).toBe('<s> <CON> T </CON>\n\n<QUE> What? <ANS>');
  });
});
