/** A setting that cannot work, found at start-up: the CLI prints its message and exits 2. */
export class ConfigError extends Error {}
