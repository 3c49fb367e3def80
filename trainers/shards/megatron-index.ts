/**
 * Megatron-LM's indexed dataset index (`.idx`), as megatron-core's `_IndexWriter` writes it and `IndexedDataset`
 * reads it: the magic `MMIDIDX\0\0`, version 1 (u64), the token dtype's code (u8), the sequence and document counts
 * (u64), then each sequence's length (i32), each sequence's byte offset in the `.bin` (i64) and the document
 * boundaries (i64: 0, then the index one past each document's last sequence). All little-endian. The `.bin` is the
 * sequences' token ids back to back in that dtype.
 */

export type TokenDtype = 'uint16' | 'uint32';

/**
 * megatron-core's DType codes. Token ids of a vocabulary too large for uint16 are stored as int32 (the code Megatron's
 * own preprocessing picks): the same little-endian bytes as uint32 for every id below 2^31.
 */
export const MEGATRON_DTYPES: Record<TokenDtype, { code: number; name: string; bytes: number }> = {
  uint16: { code: 8, name: 'uint16', bytes: 2 },
  uint32: { code: 4, name: 'int32', bytes: 4 },
};

const MAGIC = Buffer.from('MMIDIDX\x00\x00', 'latin1');

/** The `.idx` for sequences of the given lengths (in tokens), each sequence its own document. */
export function megatronIndex(sequenceLengths: readonly number[], dtype: TokenDtype): Buffer {
  const n = sequenceLengths.length;
  const { code, bytes } = MEGATRON_DTYPES[dtype];
  const out = Buffer.alloc(MAGIC.length + 8 + 1 + 8 + 8 + n * 4 + n * 8 + (n + 1) * 8);
  let at = MAGIC.copy(out, 0);
  at = out.writeBigUInt64LE(1n, at);
  at = out.writeUInt8(code, at);
  at = out.writeBigUInt64LE(BigInt(n), at);
  at = out.writeBigUInt64LE(BigInt(n + 1), at);
  for (const len of sequenceLengths) at = out.writeInt32LE(len, at);
  let pointer = 0n;
  for (const len of sequenceLengths) {
    at = out.writeBigInt64LE(pointer, at);
    pointer += BigInt(len * bytes);
  }
  for (let d = 0; d <= n; d++) at = out.writeBigInt64LE(BigInt(d), at);
  return out;
}
