import { describe, expect, it } from 'vitest';
import { decodeTokenIds, encodeTokenIds, SequencePacker } from '../../trainers/sink/sequence-packer.ts';

const docs = [
  { ids: [1, 2, 3], source: 'augmented' },
  { ids: [4, 5, 6, 7, 8], source: 'raw' },
  { ids: [9], source: 'general' },
  { ids: [10, 11, 12, 13, 14, 15, 16], source: 'raw' },
];
const EOS = 0;
const stream = docs.flatMap((d) => [...d.ids, EOS]);

describe('SequencePacker', () => {
  it('cuts the EOS-separated stream into seq_len + 1 sequences that overlap by one token, batch by batch', () => {
    const p = new SequencePacker(4, 2, EOS);
    const batches = docs.flatMap((d) => p.push(d.ids, d.source));
    // 20 tokens: sequences start at 0, 4, 8, 12 (the one at 16 needs 21 tokens): two batches of two.
    expect(batches).toHaveLength(2);
    expect(Array.from(batches[0]!.tokens)).toEqual([...stream.slice(0, 5), ...stream.slice(4, 9)]);
    expect(Array.from(batches[1]!.tokens)).toEqual([...stream.slice(8, 13), ...stream.slice(12, 17)]);
    // Every token from the stream's start to the last cut is counted once, under its source.
    expect(batches[0]!.sources).toEqual({ augmented: 4, raw: 5 });
    expect(batches[1]!.sources).toEqual({ raw: 6, general: 2 });
  });

  it('gives the same batches when its state is saved and restored between any two documents', () => {
    const straight = new SequencePacker(3, 2, EOS);
    const expected = docs.flatMap((d) => straight.push(d.ids, d.source));
    for (let cut = 0; cut <= docs.length; cut++) {
      const a = new SequencePacker(3, 2, EOS);
      const got = docs.slice(0, cut).flatMap((d) => a.push(d.ids, d.source));
      const b = new SequencePacker(3, 2, EOS);
      b.restore(JSON.parse(JSON.stringify(a.state())));
      got.push(...docs.slice(cut).flatMap((d) => b.push(d.ids, d.source)));
      expect(got).toEqual(expected);
    }
  });

  it('writes ids as little-endian uint16 when the vocabulary fits, else uint32', () => {
    const ids = Uint32Array.from([0, 1, 65535, 300]);
    const small = encodeTokenIds(ids, 65536);
    expect(small.dtype).toBe('uint16');
    expect(small.bytes.length).toBe(8);
    expect([...small.bytes.subarray(4, 6)]).toEqual([0xff, 0xff]);
    expect(Array.from(decodeTokenIds(small.bytes, 'uint16'))).toEqual(Array.from(ids));
    const big = encodeTokenIds(Uint32Array.from([70000]), 70001);
    expect(big.dtype).toBe('uint32');
    expect(Array.from(decodeTokenIds(big.bytes, 'uint32'))).toEqual([70000]);
  });
});
