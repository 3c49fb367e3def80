/** Tokens a source contributed to one batch. */
export type SourceTokens = Record<string, number>;

export interface PackedBatch {
  /** batchSize sequences of seqLen + 1 tokens, row after row. */
  tokens: Uint32Array;
  /** New tokens per mix source in this batch (each token of the stream is counted in exactly one batch). */
  sources: SourceTokens;
}

export interface PackerState {
  /** Tokens not yet in a finished sequence; starts with the previous sequence's last token once one was cut. */
  pending: number[];
  /** Sources of the pending new tokens, as runs: [source, length]. */
  pendingSources: [string, number][];
  /** Finished sequences of the batch being filled. */
  rows: number[][];
  rowSources: SourceTokens;
  started: boolean;
}

/**
 * Packs documents into fixed-length training sequences as pre-training does (docs/trainer.md): each
 * document's tokens and then EOS are appended to one stream; sequence k is stream[k·L, k·L + L + 1) for L = seqLen,
 * so consecutive sequences share one token and every token after the first is a target exactly once; documents
 * split across sequences. Sequences are grouped into batches of batchSize. Deterministic for a given input order;
 * its state can be saved and restored between records.
 */
export class SequencePacker {
  private s: PackerState = { pending: [], pendingSources: [], rows: [], rowSources: {}, started: false };

  constructor(
    readonly seqLen: number,
    readonly batchSize: number,
    readonly eosId: number,
  ) {
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`seqLen must be a positive integer (got ${seqLen})`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer (got ${batchSize})`);
  }

  /** Adds one document; returns the batches it completed. */
  push(ids: ArrayLike<number>, source: string): PackedBatch[] {
    const s = this.s;
    for (let i = 0; i < ids.length; i++) s.pending.push(ids[i]!);
    s.pending.push(this.eosId);
    addRun(s.pendingSources, source, ids.length + 1);
    const out: PackedBatch[] = [];
    const need = this.seqLen + 1;
    while (s.pending.length >= need) {
      // The first sequence's first token is new too; later sequences start with the previous one's last token.
      const fresh = s.started ? this.seqLen : need;
      s.rows.push(s.pending.slice(0, need));
      s.pending = s.pending.slice(this.seqLen);
      s.started = true;
      takeRuns(s.pendingSources, fresh, s.rowSources);
      if (s.rows.length === this.batchSize) {
        const tokens = new Uint32Array(this.batchSize * need);
        s.rows.forEach((r, k) => tokens.set(r, k * need));
        out.push({ tokens, sources: s.rowSources });
        s.rows = [];
        s.rowSources = {};
      }
    }
    return out;
  }

  state(): PackerState {
    return structuredClone(this.s);
  }

  restore(state: PackerState): void {
    this.s = structuredClone(state);
  }
}

function addRun(runs: [string, number][], source: string, n: number): void {
  const last = runs[runs.length - 1];
  if (last && last[0] === source) last[1] += n;
  else runs.push([source, n]);
}

function takeRuns(runs: [string, number][], n: number, into: SourceTokens): void {
  while (n > 0 && runs.length > 0) {
    const run = runs[0]!;
    const k = Math.min(n, run[1]);
    into[run[0]] = (into[run[0]] ?? 0) + k;
    run[1] -= k;
    n -= k;
    if (run[1] === 0) runs.shift();
  }
}

/** Token ids as little-endian bytes: uint16 when the vocabulary fits, else uint32. */
export function encodeTokenIds(ids: Uint32Array, vocabSize: number): { dtype: 'uint16' | 'uint32'; bytes: Buffer } {
  if (vocabSize <= 65536) {
    const b = Buffer.alloc(ids.length * 2);
    for (let i = 0; i < ids.length; i++) b.writeUInt16LE(ids[i]!, i * 2);
    return { dtype: 'uint16', bytes: b };
  }
  const b = Buffer.alloc(ids.length * 4);
  for (let i = 0; i < ids.length; i++) b.writeUInt32LE(ids[i]!, i * 4);
  return { dtype: 'uint32', bytes: b };
}

export function decodeTokenIds(bytes: Buffer, dtype: 'uint16' | 'uint32'): Uint32Array {
  const width = dtype === 'uint16' ? 2 : 4;
  const out = new Uint32Array(bytes.length / width);
  for (let i = 0; i < out.length; i++) out[i] = width === 2 ? bytes.readUInt16LE(i * 2) : bytes.readUInt32LE(i * 4);
  return out;
}
