import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { sampleText } from '../../processors/runtime/raw-text-records.ts';

/** Text i of the memory benchmark's corpus: a sample text of 120–199 characters. */
export function corpusText(i: number): string {
  return sampleText(i, 120 + ((i * 37) % 80));
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
