/** A command used wrongly (an unknown flag, a missing or refused value): the CLI prints its message and exits 2. */
export class UsageError extends Error {}
