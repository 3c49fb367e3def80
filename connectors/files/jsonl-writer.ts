import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

/** Appends one JSON object per line, honouring the stream's backpressure. */
export class JsonlWriter {
  private readonly stream: WriteStream;
  count = 0;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
  }

  async write(obj: unknown): Promise<void> {
    await this.writeLine(`${JSON.stringify(obj)}\n`);
  }

  /** A line already serialised, its newline included. */
  async writeLine(line: string): Promise<void> {
    this.count++;
    if (!this.stream.write(line)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
  }
}
