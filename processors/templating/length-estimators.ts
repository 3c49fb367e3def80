/** How long a prompt is, in the units of the model's length limit. */
export type LengthEstimator = (text: string) => number | Promise<number>;

/** The reference's estimate: pieces of a split on the single space character (empty pieces count) × 1.5. */
export function wordsEstimate(text: string): number {
  // Counting spaces gives split(' ').length without building the array.
  let pieces = 1;
  for (let i = text.indexOf(' '); i !== -1; i = text.indexOf(' ', i + 1)) pieces++;
  return pieces * 1.5;
}
