import { ConfigError } from '../../processors/runtime/runtime-config.ts';

/**
 * One rule for what a raw text may be, applied the same way on every entry point (files, stdin, HTTP, the
 * pipeline): a text that breaks it is rejected with a reason, never silently altered. Invalid UTF-8 is caught where
 * bytes are decoded (the readers decode with `fatal: true`); what reaches here is already a JS string.
 */

/** The default upper bound on one text, in UTF-8 bytes (IPT_MAX_TEXT_BYTES; `ipt serve --max-text-bytes`). */
export const DEFAULT_MAX_TEXT_BYTES = 1 << 20;

/** IPT_MAX_TEXT_BYTES, validated: a positive integer, or the default when unset. */
export function maxTextBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.IPT_MAX_TEXT_BYTES;
  if (raw === undefined || raw === '') return DEFAULT_MAX_TEXT_BYTES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`IPT_MAX_TEXT_BYTES=${raw}: expected an integer ≥ 1 (bytes)`);
  return n;
}

/** Why a text is refused, or undefined when it is acceptable. */
export function textProblem(text: string, maxBytes: number = DEFAULT_MAX_TEXT_BYTES): string | undefined {
  // A lone surrogate cannot be encoded as UTF-8: Avro and JSON writers would replace it with U+FFFD behind our back.
  const at = LONE_SURROGATE.exec(text)?.index;
  if (at !== undefined) {
    return `"text" has a lone surrogate (U+${text.charCodeAt(at).toString(16).toUpperCase()}) at character ${at}: not encodable as UTF-8`;
  }
  const nul = text.indexOf('\u0000');
  // NUL ends strings in C tokenizers and is refused by several sinks: it is never part of a pre-training text.
  if (nul >= 0) return `"text" has a NUL character at character ${nul}`;
  // Length in UTF-16 units bounds the byte length by 3x: count bytes only when it could matter.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes) return `"text" is ${bytes} bytes; at most ${maxBytes} (IPT_MAX_TEXT_BYTES)`;
  }
  return undefined;
}

/** With the `u` flag a well-formed pair is one code point, so only an unpaired half matches Cs. */
const LONE_SURROGATE = /\p{Cs}/u;
