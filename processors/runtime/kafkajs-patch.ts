import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * kafkajs 2.2.4 retries a send that failed on one broker while its requests to the other brokers may still be in
 * flight; the retry then sends those brokers' batches again under new sequence numbers, and a transaction commits
 * both copies. `patches/kafkajs+2.2.4.patch` (applied by `npm install`'s postinstall) makes the retry wait until
 * every request has settled. An install without scripts (`--ignore-scripts`) lacks it: exactly-once must not start
 * then, since it would double records whenever a leader answers a retriable error.
 */
const MARK = 'Promise.allSettled(requests)';

let patched: boolean | undefined;

export function kafkajsSendPatched(): boolean {
  if (patched === undefined) {
    const file = createRequire(import.meta.url).resolve('kafkajs/src/producer/sendMessages.js');
    patched = readFileSync(file, 'utf8').includes(MARK);
  }
  return patched;
}

export function assertKafkajsSendPatched(what: string): void {
  if (!kafkajsSendPatched()) {
    throw new Error(
      `${what}: exactly-once needs the project's kafkajs patch (patches/kafkajs+2.2.4.patch), which this install lacks; ` +
        'run `npm install` (or `npx patch-package`) in the project without --ignore-scripts',
    );
  }
}
