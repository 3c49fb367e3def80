/**
 * How long a prompt is, in the units of the model's length limit; optionally with a cheap upper bound, so a prompt
 * that surely fits is not measured.
 */
export type LengthEstimator = ((text: string) => number | Promise<number>) & { upperBound?: (text: string) => number };

/** Whether the estimate of text is within limit (the upper bound decides when it can). */
export function fitsWithin(estimate: LengthEstimator, text: string, limit: number): boolean | Promise<boolean> {
  if (estimate.upperBound && estimate.upperBound(text) <= limit) return true;
  const n = estimate(text);
  return typeof n === 'number' ? n <= limit : n.then((v) => v <= limit);
}

/** The reference's estimate: pieces of a split on the single space character (empty pieces count) × 1.5. */
export function wordsEstimate(text: string): number {
  // Counting spaces gives split(' ').length without building the array.
  let pieces = 1;
  for (let i = text.indexOf(' '); i !== -1; i = text.indexOf(' ', i + 1)) pieces++;
  return pieces * 1.5;
}
// At most one piece per character, plus one.
wordsEstimate.upperBound = (text: string) => (text.length + 1) * 1.5;
