/** How long a prompt is, in the units of the model's length limit. */
export type LengthEstimator = (text: string) => number | Promise<number>;

/** The reference's estimate: pieces of a split on the single space character (empty pieces count) × 1.5. */
export function wordsEstimate(text: string): number {
  return text.split(' ').length * 1.5;
}
