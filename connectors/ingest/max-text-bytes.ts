import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { DEFAULT_MAX_TEXT_BYTES } from '../../processors/templating/text-checks.ts';

/** IPT_MAX_TEXT_BYTES, validated: a positive integer, or the default when unset. */
export function maxTextBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.IPT_MAX_TEXT_BYTES;
  if (raw === undefined || raw === '') return DEFAULT_MAX_TEXT_BYTES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`IPT_MAX_TEXT_BYTES=${raw}: expected an integer ≥ 1 (bytes)`);
  return n;
}
