import type { Message } from 'kafkajs';
import type { RawText } from '../pipeline/records.ts';
import type { AvroSerde } from './serde.ts';
import { loadSchema } from './schemas.ts';

/** Encodes raw texts for a topic (its value schema must already be registered), keyed by id. */
export function rawTextMessages(serde: AvroSerde, topic: string, texts: RawText[]): Message[] {
  const schema = loadSchema('raw-text');
  return texts.map((t) => ({ key: t.id, value: serde.encode(topic, schema, t) }));
}

const WORDS = 'the of and to in is was for on that with as by at from are an be this which or its it were has have had not but their been one also more other can first new two'.split(' ');

/** Deterministic filler texts of about `bytes` bytes each, for smoke runs, tests and benchmarks. */
/** Text i of a sample corpus: "Document i." and seeded filler words, `size` characters. */
export function sampleText(i: number, size: number): string {
  const parts = [`Document ${i}.`];
  let length = parts[0]!.length;
  let k = i;
  while (length < size) {
    k = (k * 1103515245 + 12345) & 0x7fffffff;
    const word = WORDS[k % WORDS.length]!;
    parts.push(word);
    length += word.length + 1;
  }
  // Joined, not appended word by word: a text is one flat string, as a decoded record's is, not a deep
  // concatenation that every later search or copy would walk again.
  return parts.join(' ').slice(0, size);
}

export function sampleTexts(n: number, opts: { runId: string; bytes?: number; prefix?: string }): RawText[] {
  const size = opts.bytes ?? 1000;
  const out: RawText[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: `${opts.prefix ?? 'doc'}-${String(i).padStart(8, '0')}`, runId: opts.runId, text: sampleText(i, size), source: `sample:${i + 1}`, ingestedAt: 0 });
  }
  return out;
}
