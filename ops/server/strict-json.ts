import type { FastifyInstance } from 'fastify';

/** ignoreBOM keeps a byte-order mark in the text, so JSON.parse refuses it as before. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Replaces fastify's JSON body parser with one that refuses invalid UTF-8 (400, naming the problem) instead of
 * decoding it to U+FFFD: on the HTTP path, as on the files path, a text is stored as sent or refused, never altered.
 * Parsing itself stays fastify's (prototype-poisoning checks, the body limit).
 */
export function useStrictJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(Object.assign(new Error('request body is not valid UTF-8'), { statusCode: 400 }), undefined);
      return;
    }
    parse(req, text, done);
  });
}
