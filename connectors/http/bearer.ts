import { createHash, timingSafeEqual } from 'node:crypto';

// The scheme is case-insensitive and may be followed by several spaces (RFC 9110 §11.4); anything else —
// another scheme, a tab, two tokens — is refused.
const BEARER = /^bearer +(\S+)$/i;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * A check of the Authorization header against one bearer token. Both sides are hashed before the constant-time
 * comparison, so neither the time taken nor an early length mismatch tells a client how much of its guess was right.
 * Only the header counts: a token in the query string (?token=, ?access_token=) ends up in proxy and access logs,
 * so it is never looked at.
 */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  // "Bearer " alone would match an empty token.
  if (token === '') throw new Error('the bearer token is empty');
  const expected = digest(token);
  return (authorization) => {
    const m = BEARER.exec(authorization ?? '');
    // The comparison runs whether or not the header parsed, so a malformed header costs the same time.
    const same = timingSafeEqual(digest(m?.[1] ?? ''), expected);
    return m !== null && same;
  };
}
