/**
 * A job that could not do its work for a reason the operator can fix (an endpoint that does not answer, a server
 * without a needed API): the CLI prints the message alone, no stack, and exits 1. The message names what failed
 * and the flag or variable to check.
 */
export class JobError extends Error {
  override name = 'JobError';
}
