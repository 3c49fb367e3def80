import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const WORDS = 'the of and to in is was for on that with as by at from are an be this which or its it were has have had not but their been one also more other can first new two'.split(' ');

/** Text i of the memory benchmark's corpus: "Document i." and seeded filler words, 120–199 characters. */
export function corpusText(i: number): string {
  const size = 120 + ((i * 37) % 80);
  const parts = [`Document ${i}.`];
  let length = parts[0]!.length;
  let k = i;
  while (length < size) {
    k = (k * 1103515245 + 12345) & 0x7fffffff;
    const word = WORDS[k % WORDS.length]!;
    parts.push(word);
    length += word.length + 1;
  }
  return parts.join(' ').slice(0, size);
}

/**
 * Writes n short texts as JSONL ({id, text}), deterministic for n, without holding them: the benchmark process must
 * not need memory that grows with the corpus either. Returns the file's bytes.
 */
export async function writeMemoryCorpus(path: string, n: number): Promise<number> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  let bytes = 0;
  let chunk: string[] = [];
  const flush = async () => {
    const s = chunk.join('');
    chunk = [];
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  for (let i = 0; i < n; i++) {
    chunk.push(`${JSON.stringify({ id: `m-${String(i).padStart(8, '0')}`, text: corpusText(i) })}\n`);
    if (chunk.length === 10_000) await flush();
  }
  await flush();
  out.end();
  await once(out, 'finish');
  return bytes;
}
