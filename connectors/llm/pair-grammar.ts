/**
 * Constraints that keep the synthesizer's output inside the pair format of docs/method.md §1: one or more
 * `<QUE> question <ANS> answer </END>` separated by blank lines. Question and answer may span lines (multiple-choice
 * options, chain-of-thought rationales) but contain no tag and no blank line.
 */
/** How long a guided output may grow: pairs, lines per question or answer, characters per line. */
export interface GrammarBounds {
  maxPairs?: number;
  maxLine?: number;
  maxLines?: number;
}

export function pairGrammarGbnf({ maxPairs = 10, maxLine = 400, maxLines = 12 }: GrammarBounds = {}): string {
  const more = maxPairs > 1 ? ` ("\\n\\n" pair){0,${maxPairs - 1}}` : '';
  // Bounded lines: a small model that rambles is made to close its pair instead of running out of tokens mid-pair.
  return [
    `root ::= pair${more}`,
    'pair ::= "<QUE> " text " <ANS> " text " </END>"',
    `text ::= line ("\\n" line){0,${maxLines - 1}}`,
    `line ::= [^<\\n]{1,${maxLine}}`,
    '',
  ].join('\n');
}

/** The same language as a regular expression, for servers with regex-guided decoding (vLLM, SGLang). */
export function pairGrammarRegex({ maxPairs = 10, maxLine = 400, maxLines = 12 }: GrammarBounds = {}): string {
  const text = `[^<\\n]{1,${maxLine}}(\\n[^<\\n]{1,${maxLine}}){0,${maxLines - 1}}`;
  const pair = `<QUE> ${text} <ANS> ${text} </END>`;
  return `${pair}(\\n\\n${pair}){0,${maxPairs - 1}}`;
}

export type GuidedDecoding = 'off' | 'gbnf' | 'regex';

/** Request fields that ask a server for guided output: `grammar` (llama.cpp), `guided_regex` (vLLM), `regex` (SGLang). */
export function guidedFields(mode: GuidedDecoding, bounds: GrammarBounds = {}): Record<string, string> {
  if (mode === 'gbnf') return { grammar: pairGrammarGbnf(bounds) };
  if (mode === 'regex') {
    const r = pairGrammarRegex(bounds);
    return { guided_regex: r, regex: r };
  }
  return {};
}
