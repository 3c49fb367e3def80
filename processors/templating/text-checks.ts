/**
 * One rule for what a raw text and its id may be, applied the same way by every ingest path (files, stdin, HTTP): a
 * record that breaks it is rejected with a reason, never silently altered. Invalid UTF-8 is caught where bytes are
 * decoded (the readers decode with `fatal: true`); what reaches here is already a JS string.
 */

/** The default upper bound on one text, in UTF-8 bytes (IPT_MAX_TEXT_BYTES; `ipt serve --max-text-bytes`). */
export const DEFAULT_MAX_TEXT_BYTES = 1 << 20;

/**
 * Why a text is refused, or undefined when it is acceptable. An empty text is acceptable here: the method defines
 * its synthesizer input, and in a file it keeps its place in the rounds (the batch form counts every text of the
 * input), is not sent, and is counted. HTTP ingest into an open run, where no place is at stake, refuses it.
 */
export function textProblem(text: string, maxBytes: number = DEFAULT_MAX_TEXT_BYTES): string | undefined {
  const unencodable = encodingProblem('text', text);
  if (unencodable !== undefined) return unencodable;
  // Length in UTF-16 units bounds the byte length by 3x: count bytes only when it could matter.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes) return `"text" is ${bytes} bytes; at most ${maxBytes} (IPT_MAX_TEXT_BYTES)`;
  }
  return undefined;
}

/**
 * Why a string cannot be stored exactly as given, naming its field: a lone surrogate, which UTF-8 cannot carry (Avro
 * and JSON writers would put U+FFFD in its place behind our back), or NUL, which ends strings in C tokenizers and is
 * refused by several sinks. Applies to texts and to the strings stored beside them (a source, an evaluation record).
 */
export function encodingProblem(field: string, s: string): string | undefined {
  // isWellFormed is native and exact for the common case; the regex finds where a lone surrogate is.
  const at = s.isWellFormed() ? undefined : LONE_SURROGATE.exec(s)?.index;
  if (at !== undefined) return `"${field}" has a lone surrogate (U+${s.charCodeAt(at).toString(16).toUpperCase()}) at character ${at}: not encodable as UTF-8`;
  const nul = s.indexOf('\u0000');
  if (nul >= 0) return `"${field}" has a NUL character at character ${nul}`;
  return undefined;
}

/** With the `u` flag a well-formed pair is one code point, so only an unpaired half matches Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * An id becomes part of a Kafka key ("<run>/<id>"): no whitespace, "/", control characters or lone surrogates (which
 * UTF-8 cannot carry: the key would silently hold U+FFFD instead), at most 256 characters.
 */
const ID = /^[^\s/\p{Cc}\p{Cs}]{1,256}$/u;

/** Why an id is refused, or undefined when it is acceptable; the same rule for HTTP and files. */
export function idProblem(id: unknown): string | undefined {
  return typeof id === 'string' && ID.test(id) ? undefined : '"id" must be a string of 1–256 characters without whitespace, "/", control characters or lone surrogates';
}

/** How a JSON value that should have been a string is named in a reason ("array" where typeof says "object"). */
export function jsonKind(v: unknown): string {
  return v === null ? 'null' : v === undefined ? 'missing' : Array.isArray(v) ? 'array' : typeof v;
}
