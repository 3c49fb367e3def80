import { setting } from '../../processors/runtime/settings.ts';

/** IPT_MAX_TEXT_BYTES, validated: a positive integer, or the default when unset. */
export const maxTextBytes = (env: NodeJS.ProcessEnv = process.env): number => setting('IPT_MAX_TEXT_BYTES', env);
