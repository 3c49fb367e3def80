import { closeSync, createWriteStream, openSync, readSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { basename, dirname, extname, join } from 'node:path';
import { fileWriter, ParquetWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import { Bits, NumberColumn } from './compact-ids.ts';
import { JsonlWriter } from './jsonl-writer.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';

/** A mixed record as the output file holds it (writeMixedFile's fields, in its order). */
const lineOf = (r: MixedTextRecord) => `${JSON.stringify({ id: r.id, runId: r.runId, source: r.source, sourceId: r.sourceId, text: r.text, tokens: r.tokens, mixIndex: r.mixIndex })}\n`;

/** hyparquet-writer's default row groups (1,000 rows, then 100,000 each), so the file is writeMixedFile's. */
const groupRows = (i: number) => (i === 0 ? 1000 : 100_000);

/**
 * A run's mixed stream written to disk as it arrives, then into the output file in mix order: writeMixedFile's file,
 * without holding the records. Each record is appended to a spool file beside the output; a record that a later
 * one with the same id replaces (a restarted stage wrote it again) is marked, and the kept ones are written out by
 * mix index. In a run without restarts the records arrive in mix order once each, and a JSONL spool simply becomes
 * the output. Memory: 16 bytes a record (its offset and mix index) and a bit, and one Parquet row group while
 * writing one.
 */
export class MixedSpool {
  private readonly spool: string;
  private readonly stream: WriteStream;
  private readonly offsets = new NumberColumn((n) => new Float64Array(n));
  private readonly mixIndex = new NumberColumn((n) => new Float64Array(n));
  private readonly replacedBits = new Bits();
  private replacedCount = 0;
  private bytes = 0;
  private done = false;
  private failed: Error | undefined;

  /** Opens the spool at once: an output that cannot be written fails the run before it starts. */
  constructor(readonly path: string) {
    this.spool = join(dirname(path), `.${basename(path)}.${process.pid}.spool`);
    this.stream = createWriteStream(this.spool, { fd: openSync(this.spool, 'w'), encoding: 'utf8' });
    this.stream.on('error', (err) => (this.failed ??= err));
  }

  /** Appends a record; returns its entry number (for replaced()). */
  async add(r: MixedTextRecord): Promise<number> {
    if (this.failed) throw new Error(`writing ${this.spool}: ${this.failed.message}`);
    const line = lineOf(r);
    this.offsets.push(this.bytes);
    this.bytes += Buffer.byteLength(line);
    const entry = this.mixIndex.push(r.mixIndex);
    if (!this.stream.write(line)) await once(this.stream, 'drain');
    return entry;
  }

  /** An earlier entry whose id a later record took (the later one is the one kept, as a Map by id keeps it). */
  replaced(entry: number): void {
    if (this.replacedBits.set(entry)) this.replacedCount++;
  }

  /** Writes the output file (JSONL or Parquet by its extension); returns the records in it. */
  async finish(): Promise<number> {
    this.stream.end();
    if (!this.failed) await once(this.stream, 'finish');
    this.done = true;
    if (this.failed) throw new Error(`writing ${this.spool}: ${this.failed.message}`);
    const order = this.order();
    const records = order ? order.length : this.mixIndex.length - this.replacedCount;
    const ext = extname(this.path).toLowerCase();
    try {
      if (ext === '.parquet') await this.writeParquet(order);
      else if (!order) renameSync(this.spool, this.path);
      else {
        const out = new JsonlWriter(this.path);
        for (const line of this.lines(order)) await out.writeLine(line);
        await out.close();
      }
    } finally {
      rmSync(this.spool, { force: true });
    }
    return records;
  }

  /** Removes the spool (a run that failed writes no output, as before). */
  async discard(): Promise<void> {
    if (!this.done && !this.stream.closed) {
      this.stream.end();
      await once(this.stream, 'close').catch(() => undefined);
    }
    rmSync(this.spool, { force: true });
  }

  /** The kept entries in mix order (stable for equal indexes, as a sort of a Map's values is); undefined when that is the spool's own order. */
  private order(): Int32Array | undefined {
    const mix = this.mixIndex.view();
    let sorted = this.replacedCount === 0;
    for (let i = 1; sorted && i < mix.length; i++) if (mix[i]! < mix[i - 1]!) sorted = false;
    if (sorted) return undefined;
    const kept = new Int32Array(mix.length - this.replacedCount);
    let k = 0;
    for (let i = 0; i < mix.length; i++) if (!this.replacedBits.get(i)) kept[k++] = i;
    return kept.sort((a, b) => mix[a]! - mix[b]! || a - b);
  }

  /** The spool's lines in the given order (by offset), or as stored. */
  private *lines(order: Int32Array | undefined): Generator<string> {
    const fd = openSync(this.spool, 'r');
    try {
      const n = order ? order.length : this.mixIndex.length;
      let buf = Buffer.alloc(1 << 16);
      for (let i = 0; i < n; i++) {
        const e = order ? order[i]! : i;
        const start = this.offsets.at(e);
        const len = (e + 1 < this.offsets.length ? this.offsets.at(e + 1) : this.bytes) - start;
        if (len > buf.length) buf = Buffer.alloc(len);
        readSync(fd, buf, 0, len, start);
        yield buf.toString('utf8', 0, len);
      }
    } finally {
      closeSync(fd);
    }
  }

  private async writeParquet(order: Int32Array | undefined): Promise<void> {
    const columns = () => ({ id: [] as string[], run_id: [] as string[], source: [] as string[], source_id: [] as string[], text: [] as string[], tokens: [] as bigint[], mix_index: [] as bigint[] });
    const sources = (c: ReturnType<typeof columns>): ColumnSource[] => [
      { name: 'id', data: c.id, type: 'STRING' },
      { name: 'run_id', data: c.run_id, type: 'STRING' },
      { name: 'source', data: c.source, type: 'STRING' },
      { name: 'source_id', data: c.source_id, type: 'STRING' },
      { name: 'text', data: c.text, type: 'STRING' },
      { name: 'tokens', data: c.tokens, type: 'INT64' },
      { name: 'mix_index', data: c.mix_index, type: 'INT64' },
    ];
    let group = columns();
    const writer = new ParquetWriter({ writer: fileWriter(this.path), schema: schemaFromColumnData({ columnData: sources(group) }) });
    let groups = 0;
    const flush = async () => {
      if (group.id.length === 0) return;
      await writer.write({ columnData: sources(group), rowGroupSize: group.id.length });
      group = columns();
      groups++;
    };
    for (const line of this.lines(order)) {
      const r = JSON.parse(line) as MixedTextRecord;
      group.id.push(r.id);
      group.run_id.push(r.runId);
      group.source.push(r.source);
      group.source_id.push(r.sourceId);
      group.text.push(r.text);
      group.tokens.push(BigInt(r.tokens));
      group.mix_index.push(BigInt(r.mixIndex));
      if (group.id.length === groupRows(groups)) await flush();
    }
    await flush();
    await writer.finish();
  }
}
