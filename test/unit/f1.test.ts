import { describe, expect, it } from 'vitest';
import { exactMatch, f1Score, normalizeAnswer } from 'instruct-pt';

describe('SQuAD v2.0 token F1 and exact match (docs/method.md §7, exact)', () => {
  it('normalises: lower-case, punctuation, articles, whitespace', () => {
    expect(normalizeAnswer('The  Quick, brown fox!')).toBe('quick brown fox');
    expect(normalizeAnswer('An apple a day')).toBe('apple day');
    expect(normalizeAnswer('theatre another')).toBe('theatre another');
    expect(normalizeAnswer("rock'n'roll")).toBe('rocknroll');
  });
  it('treats non-ASCII letters as word characters, as Python re does', () => {
    // "éthe" is one word in Python's \b sense, so "the" inside it is not an article.
    expect(normalizeAnswer('éthe the')).toBe('éthe');
    expect(normalizeAnswer('the–a')).toBe('–');
  });
  it('keeps non-ASCII punctuation (string.punctuation is ASCII only)', () => {
    expect(normalizeAnswer('«oui»')).toBe('«oui»');
  });
  it('computes F1 over token multisets', () => {
    expect(f1Score('the cat sat', 'cat sat down')).toBeCloseTo((2 * 1 * (2 / 3)) / (1 + 2 / 3), 12);
    expect(f1Score('a a b', 'a b b')).toBeCloseTo(2 / 3, 12);
    expect(f1Score('Paris', 'paris.')).toBe(1);
    expect(f1Score('London', 'Paris')).toBe(0);
  });
  it('scores empty sides as the script does', () => {
    expect(f1Score('', '')).toBe(1);
    expect(f1Score('the', '')).toBe(1); // both normalise to no tokens
    expect(f1Score('x', '')).toBe(0);
    expect(f1Score('', 'x')).toBe(0);
  });
  it('takes the maximum over several gold answers, ignoring golds that normalise to nothing', () => {
    expect(f1Score('blue sky', ['green', 'blue sky today', 'blue sky'])).toBe(1);
    expect(f1Score('', ['the', 'a'])).toBe(1);
    expect(f1Score('x', ['the', 'x'])).toBe(1);
  });
  it('computes exact match on normalised text', () => {
    expect(exactMatch('The Eiffel Tower!', 'eiffel tower')).toBe(1);
    expect(exactMatch('Eiffel', ['tower', 'eiffel'])).toBe(1);
    expect(exactMatch('Eiffel', 'tower')).toBe(0);
  });
});
