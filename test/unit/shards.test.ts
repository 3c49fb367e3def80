import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { encodeTokenIds } from '../../trainers/sink/sequence-packer.ts';
import type { TokenBatchRecord } from '../../trainers/sink/trainer-sink-processor.ts';
import { megatronIndex } from '../../trainers/shards/megatron-index.ts';
import { lockShardDir, readManifests, resumePoint } from '../../trainers/shards/shard-manifest.ts';
import { exportShards } from '../../trainers/shards/export-shards.ts';
import { ShardWriter } from '../../trainers/shards/shard-writer.ts';
import { StepMerger, type PlacedBatch } from '../../trainers/shards/step-merger.ts';

const SEQ = 8;
const ROWS = 2;
const WORLD = 2;

/** Batch g of a run: ROWS rows of SEQ + 1 ids, each id telling its step, row and position. */
function batch(g: number, vocabSize = 50_000): PlacedBatch {
  const ids = new Uint32Array(ROWS * (SEQ + 1)).map((_, i) => (g * 100 + i) % vocabSize);
  const { dtype, bytes } = encodeTokenIds(ids, vocabSize);
  const b: TokenBatchRecord = { runId: 'r1', globalStep: g, rank: g % WORLD, step: Math.floor(g / WORLD), seqLen: SEQ, batchSize: ROWS, vocabSize, dtype, tokens: bytes, sources: [{ source: 'augmented', tokens: 10 }], lastMixIndex: g, createdAt: 0 };
  return { batch: b, partition: g % WORLD, offset: BigInt(10 + Math.floor(g / WORLD) * 3) };
}
const idsOf = (p: PlacedBatch) => [...new Uint16Array(p.batch.tokens.buffer.slice(p.batch.tokens.byteOffset, p.batch.tokens.byteOffset + p.batch.tokens.length))];

describe('Megatron index', () => {
  it('is laid out as megatron-core writes it: magic, version, dtype code, counts, lengths, pointers, document bounds', () => {
    const idx = megatronIndex([3, 5], 'uint16');
    expect(idx.subarray(0, 9).toString('latin1')).toBe('MMIDIDX\x00\x00');
    expect(idx.readBigUInt64LE(9)).toBe(1n);
    expect(idx.readUInt8(17)).toBe(8); // uint16
    expect(idx.readBigUInt64LE(18)).toBe(2n); // sequences
    expect(idx.readBigUInt64LE(26)).toBe(3n); // document bounds: 0, 1, 2
    expect([idx.readInt32LE(34), idx.readInt32LE(38)]).toEqual([3, 5]);
    expect([idx.readBigInt64LE(42), idx.readBigInt64LE(50)]).toEqual([0n, 6n]); // byte offsets: 3 uint16 ids before the second
    expect([58, 66, 74].map((o) => idx.readBigInt64LE(o))).toEqual([0n, 1n, 2n]);
    expect(idx.length).toBe(82);
    expect(megatronIndex([3], 'uint32').readUInt8(17)).toBe(4); // int32
  });
});

describe('StepMerger', () => {
  it('hands batches on in global-step order, holding one that came early, and drops a repeated step once checked', () => {
    const m = new StepMerger(0);
    m.add(batch(1));
    expect([...m.drain()]).toEqual([]);
    expect(m.held).toBe(1);
    m.add(batch(0));
    expect([...m.drain()].map((b) => b.batch.globalStep)).toEqual([0, 1]);
    m.add(batch(0)); // behind: already handed on
    m.add(batch(3));
    m.add(batch(3)); // the same bytes again while held
    expect(m.duplicates).toBe(2);
    const other = batch(3);
    other.batch = { ...other.batch, tokens: Buffer.alloc(other.batch.tokens.length) };
    expect(() => m.add(other)).toThrow(/global step 3 is in the token topic twice with different tokens/);
    expect(m.next).toBe(2);
  });
});

describe('ShardWriter and the manifests', () => {
  it('writes whole shards (bin, idx, Parquet, then the manifest) and resumes after the last one, removing a crash’s left-overs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-shards-'));
    try {
      const resume = resumePoint(dir);
      expect(resume).toMatchObject({ shard: 0, nextStep: 0 });
      const w = new ShardWriter(dir, 0, ['megatron', 'parquet'], 't.train.tokens', resume.positions);
      for (const g of [0, 1, 2]) await w.add(batch(g));
      const m = await w.finish(new Date(0));
      expect(m).toMatchObject({ runId: 'r1', shard: 0, globalSteps: { first: 0, last: 2 }, batches: 3, sequences: 6, tokens: 54, seqLen: SEQ, dtype: 'uint16', sources: { augmented: 30 } });
      expect(m.offsets).toEqual([
        { partition: 0, first: '10', last: '13', batches: 2 },
        { partition: 1, first: '10', last: '10', batches: 1 },
      ]);
      expect(m.resume).toEqual([
        { partition: 0, offset: '14' },
        { partition: 1, offset: '11' },
      ]);
      const bin = readFileSync(join(dir, 'shard-00000.bin'));
      expect([...new Uint16Array(bin.buffer, bin.byteOffset, bin.length / 2)]).toEqual([0, 1, 2].flatMap((g) => idsOf(batch(g))));
      const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(join(dir, 'shard-00000.parquet')) })) as { input_ids: number[]; global_step: bigint }[];
      expect(rows.map((r) => r.input_ids)).toEqual([0, 1, 2].flatMap((g) => [idsOf(batch(g)).slice(0, SEQ + 1), idsOf(batch(g)).slice(SEQ + 1)]));
      expect(rows.map((r) => Number(r.global_step))).toEqual([0, 0, 1, 1, 2, 2]);

      // A crash while shard 1 was written: its files, with no manifest, are removed; reading goes on after shard 0.
      const crashed = new ShardWriter(dir, 1, ['megatron'], 't.train.tokens', new Map(resume.positions));
      await crashed.add(batch(3));
      writeFileSync(join(dir, 'shard-00001.bin'), 'partial');
      const again = resumePoint(dir);
      expect(readdirSync(dir).sort()).toEqual(['shard-00000.bin', 'shard-00000.idx', 'shard-00000.json', 'shard-00000.parquet']);
      expect(again).toMatchObject({ shard: 1, nextStep: 3, positions: new Map([[0, 14n], [1, 11n]]) });

      // A shard whose file is damaged is named, not read past.
      writeFileSync(join(dir, 'shard-00000.bin'), 'short');
      expect(() => readManifests(dir)).toThrow(/shard-00000.json: its file shard-00000.bin is missing or not 108 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a batch of another shape in one shard, and names it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-shards-'));
    try {
      const w = new ShardWriter(dir, 0, ['megatron'], 't', new Map());
      await w.add(batch(0));
      const wide = batch(1, 70_000);
      await expect(w.add(wide)).rejects.toThrow(/global step 1 \(partition 1 offset 10\) has seq len 8, batch size 2, uint32, vocabulary 70000; the shard's step 0 has 8, 2, uint16, 50000/);
      w.discard();
      expect(existsSync(join(dir, '.shard-00000.bin.tmp'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the shard folder', () => {
  it('is one export’s at a time, and continues one run of one topic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-shards-'));
    try {
      const release = lockShardDir(dir);
      expect(() => lockShardDir(dir)).toThrow(new RegExp(`another export \\(pid ${process.pid}\\) is writing`));
      release();
      lockShardDir(dir)();
      const w = new ShardWriter(dir, 0, ['megatron'], 'a.train.tokens', new Map());
      await w.add(batch(0));
      await w.finish();
      const other = { kafka: {} as never, serde: {} as never, topic: 'b.train.tokens', runId: 'r1', dir, formats: ['megatron'] as const, shardBytes: 1 };
      await expect(exportShards(other)).rejects.toThrow(/its shards hold run r1 of a.train.tokens, not run r1 of b.train.tokens/);
      expect(existsSync(join(dir, '.lock'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
