import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';
import { decodeTokenIds } from '../sink/sequence-packer.ts';
import { megatronIndex, MEGATRON_DTYPES } from './megatron-index.ts';
import { MANIFEST_FORMAT, shardName, type ShardFormat, type ShardManifest } from './shard-manifest.ts';
import type { PlacedBatch } from './step-merger.ts';

/** One row per packed sequence: its token ids, and the global step of the batch it came from. */
const PARQUET_SCHEMA = [
  { name: 'root', num_children: 2 },
  { name: 'input_ids', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'INT32', repetition_type: 'REQUIRED' },
  { name: 'global_step', type: 'INT64', repetition_type: 'REQUIRED' },
] as const;

/** Rows per Parquet row group: about 8 MiB of ids at seq len 2048. */
const ROW_GROUP_ROWS = 1024;

/** A file's SHA-256, read in 8 MiB pieces (shards may be larger than one Buffer can hold). */
function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Writes all of `data` (writeSync may write less, e.g. on a full disk: then it throws or the loop goes on). */
function writeAll(fd: number, data: Uint8Array): void {
  for (let at = 0; at < data.length; ) at += writeSync(fd, data, at);
}

/** Writes a file and flushes it to the disk before it is renamed into place. */
function writeDurably(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * One shard being written: the batches of one run, in global-step order, to a Megatron `.bin`/`.idx` pair and/or a
 * Parquet file. Files are written under temporary names and renamed, then the manifest is written the same way, so
 * a shard with a manifest is whole and a crash leaves only files the next export removes (resumePoint).
 */
export class ShardWriter {
  private readonly tmp = new Map<string, string>();
  private bin?: number;
  private readonly parquet?: ParquetWriter;
  private rows: number[][] = [];
  private rowSteps: bigint[] = [];
  private readonly lengths: number[] = [];
  private readonly offsets = new Map<number, { first: bigint; last: bigint; batches: number }>();
  private readonly sources: Record<string, number> = {};
  private first?: PlacedBatch;
  private lastStep = -1;
  private batches = 0;
  /** Bytes of token ids taken so far (what the shard size is measured in). */
  tokenBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly shard: number,
    formats: readonly ShardFormat[],
    private readonly topic: string,
    private readonly resume: Map<number, bigint>,
  ) {
    mkdirSync(dir, { recursive: true });
    const base = shardName(shard);
    if (formats.includes('megatron')) this.bin = openSync(this.tmpPath(`${base}.bin`), 'w');
    if (formats.includes('parquet')) this.parquet = new ParquetWriter({ writer: fileWriter(this.tmpPath(`${base}.parquet`)), schema: PARQUET_SCHEMA as never });
  }

  get empty(): boolean {
    return this.batches === 0;
  }

  async add(p: PlacedBatch): Promise<void> {
    const b = p.batch;
    const f = this.first?.batch;
    if (f && (b.seqLen !== f.seqLen || b.batchSize !== f.batchSize || b.dtype !== f.dtype || b.vocabSize !== f.vocabSize)) {
      throw new Error(`run ${b.runId}: global step ${b.globalStep} (partition ${p.partition} offset ${p.offset}) has seq len ${b.seqLen}, batch size ${b.batchSize}, ${b.dtype}, vocabulary ${b.vocabSize}; the shard's step ${f.globalStep} has ${f.seqLen}, ${f.batchSize}, ${f.dtype}, ${f.vocabSize}: a run's batches must keep one shape`);
    }
    const rowTokens = b.seqLen + 1;
    if (b.tokens.length !== b.batchSize * rowTokens * MEGATRON_DTYPES[b.dtype].bytes) throw new Error(`run ${b.runId}: global step ${b.globalStep} (partition ${p.partition} offset ${p.offset}) holds ${b.tokens.length} bytes, not ${b.batchSize} rows of ${rowTokens} ${b.dtype} ids`);
    this.first ??= p;
    if (this.bin !== undefined) writeAll(this.bin, b.tokens);
    if (this.parquet) {
      const ids = decodeTokenIds(b.tokens, b.dtype);
      for (let r = 0; r < b.batchSize; r++) {
        this.rows.push(Array.from(ids.subarray(r * rowTokens, (r + 1) * rowTokens)));
        this.rowSteps.push(BigInt(b.globalStep));
      }
      if (this.rows.length >= ROW_GROUP_ROWS) await this.flushRows();
    }
    for (let r = 0; r < b.batchSize; r++) this.lengths.push(rowTokens);
    const o = this.offsets.get(p.partition);
    if (o) {
      o.last = p.offset;
      o.batches++;
    } else this.offsets.set(p.partition, { first: p.offset, last: p.offset, batches: 1 });
    this.resume.set(p.partition, p.offset + 1n);
    for (const s of b.sources) this.sources[s.source] = (this.sources[s.source] ?? 0) + Number(s.tokens);
    this.lastStep = Number(b.globalStep);
    this.batches++;
    this.tokenBytes += b.tokens.length;
  }

  /** Completes the shard's files, renames them into place and writes its manifest (last). */
  async finish(createdAt = new Date()): Promise<ShardManifest> {
    const f = this.first?.batch;
    if (!f) throw new Error(`shard ${shardName(this.shard)}: nothing to write`);
    const base = shardName(this.shard);
    const files: ShardManifest['files'] = [];
    const place = (format: ShardFormat, name: string) => {
      const tmp = this.tmpPath(name);
      const fd = openSync(tmp, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      const path = join(this.dir, name);
      renameSync(tmp, path);
      this.tmp.delete(name);
      files.push({ format, file: name, bytes: statSync(path).size, sha256: sha256File(path) });
    };
    if (this.bin !== undefined) {
      closeSync(this.bin);
      this.bin = undefined;
      writeDurably(this.tmpPath(`${base}.idx`), megatronIndex(this.lengths, f.dtype));
      place('megatron', `${base}.bin`);
      place('megatron', `${base}.idx`);
    }
    if (this.parquet) {
      await this.flushRows();
      await this.parquet.finish();
      place('parquet', `${base}.parquet`);
    }
    const manifest: ShardManifest = {
      format: MANIFEST_FORMAT,
      runId: f.runId,
      shard: this.shard,
      topic: this.topic,
      files,
      globalSteps: { first: Number(f.globalStep), last: this.lastStep },
      batches: this.batches,
      sequences: this.lengths.length,
      tokens: this.lengths.length * (f.seqLen + 1),
      seqLen: f.seqLen,
      batchSize: f.batchSize,
      vocabSize: f.vocabSize,
      dtype: f.dtype,
      sources: this.sources,
      offsets: [...this.offsets].sort(([a], [b]) => a - b).map(([partition, o]) => ({ partition, first: o.first.toString(), last: o.last.toString(), batches: o.batches })),
      resume: [...this.resume].sort(([a], [b]) => a - b).map(([partition, offset]) => ({ partition, offset: offset.toString() })),
      createdAt: createdAt.toISOString(),
    };
    const tmp = this.tmpPath(`${base}.json`);
    writeDurably(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(tmp, join(this.dir, `${base}.json`));
    // The renames themselves reach the disk with the folder.
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    this.tmp.clear();
    return manifest;
  }

  /** Removes what was written (a stop before the shard was complete: the next export reads these batches again). */
  discard(): void {
    if (this.bin !== undefined) closeSync(this.bin);
    this.bin = undefined;
    for (const tmp of this.tmp.values()) rmSync(tmp, { force: true });
    this.tmp.clear();
  }

  private tmpPath(name: string): string {
    const path = join(this.dir, `.${name}.tmp`);
    this.tmp.set(name, path);
    return path;
  }

  private async flushRows(): Promise<void> {
    if (!this.parquet || this.rows.length === 0) return;
    await this.parquet.write({ columnData: [{ name: 'input_ids', data: this.rows }, { name: 'global_step', data: this.rowSteps }], rowGroupSize: this.rows.length });
    this.rows = [];
    this.rowSteps = [];
  }
}
