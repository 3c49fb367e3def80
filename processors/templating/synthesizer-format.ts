/** The synthesizer's formats (docs/method.md §1), exactly. */

export interface QAPair {
  question: string;
  answer: string;
}

/** `<s> <CON> T </CON>\n\n`; for an empty text just `<s>`. */
export function formatSynthesizerInput(context: string): string {
  return context === '' ? '<s>' : `<s> <CON> ${context} </CON>\n\n`;
}

/** `<QUE> Q <ANS> A </END>` per pair, joined by a blank line, no trailing separator. */
export function formatPairs(pairs: readonly QAPair[]): string {
  return pairs.map((p) => `<QUE> ${p.question} <ANS> ${p.answer} </END>`).join('\n\n');
}

/** One few-shot example: synthesizer input + pairs block + `</s>`. */
export function formatExample(context: string, pairs: readonly QAPair[]): string {
  return formatSynthesizerInput(context) + formatPairs(pairs) + '</s>';
}

/** The prompt for docs/method.md §7's response-accuracy evaluation: context (after optional few-shot examples), then a gold instruction. */
export function formatEvaluationPrompt(context: string, instruction: string, fewShot = ''): string {
  return `${fewShot}${formatSynthesizerInput(context)}<QUE> ${instruction} <ANS>`;
}
