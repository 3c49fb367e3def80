import tokenizers from '@anush008/tokenizers';
import { defineProcessor, type Emit, type HandlerResult } from '../../processors/runtime/processor.ts';
import { inOrder } from '../../processors/runtime/concurrency.ts';
import { TopicTable } from '../../processors/runtime/topic-table.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import type { Kafka } from 'kafkajs';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';
import { encodeTokenIds, SequencePacker, type PackerState } from './sequence-packer.ts';
import type { SinkState, TokenBatch } from '../../processors/pipeline/avro-records.generated.ts';

export interface TrainerSinkOptions {
  name: string;
  input: string;
  /** One partition per data-parallel rank. */
  output: string;
  stateTopic: string;
  tokenizerJson: string;
  /** The document separator appended after each text (a token of the tokenizer, e.g. </s> or [SEP]). */
  eosToken: string;
  seqLen: number;
  batchSize: number;
  worldSize: number;
}

export type TokenBatchRecord = Omit<TokenBatch, 'dtype'> & { dtype: 'uint16' | 'uint32' };

type SinkStateRecord = SinkState;

export function loadTokenizer(path: string, eosToken: string): { tok: tokenizers.Tokenizer; eosId: number; vocabSize: number } {
  const tok = tokenizers.Tokenizer.fromFile(path);
  const eosId = tok.tokenToId(eosToken);
  if (eosId === null || eosId === undefined) throw new Error(`${path}: the tokenizer has no token "${eosToken}" to separate documents (--eos-token)`);
  return { tok, eosId, vocabSize: tok.getVocabSize(true) };
}

/**
 * The trainer sink: mixed training texts (in mix order) → token batches, one partition per data-parallel rank.
 * Texts are tokenized with the training model's tokenizer.json (Hugging Face's Rust tokenizers: the same ids as
 * Python's), EOS after each, packed into seqLen + 1 sequences and batches; batch g goes to rank g mod worldSize.
 * The packing state goes to a compacted changelog in the same batch as the outputs (the same transaction with
 * exactly-once), so a restarted sink continues the stream exactly.
 */
export function trainerSinkProcessor(kafka: Kafka, serde: AvroSerde, o: TrainerSinkOptions) {
  const { tok, eosId, vocabSize } = loadTokenizer(o.tokenizerJson, o.eosToken);
  const saved = new TopicTable<SinkStateRecord>(kafka, serde, o.stateTopic, 'sink-state', (s) => s.runId);
  const runs = new Map<string, { packer: SequencePacker; globalStep: number; lastMixIndex: number; lastOffset: number }>();
  const serially = inOrder();

  const runState = (runId: string) => {
    let r = runs.get(runId);
    if (!r) {
      const packer = new SequencePacker(o.seqLen, o.batchSize, eosId);
      const s = saved.peek(runId);
      if (s) packer.restore(JSON.parse(s.packer) as PackerState);
      runs.set(runId, (r = { packer, globalStep: s?.globalStep ?? 0, lastMixIndex: s?.lastMixIndex ?? -1, lastOffset: s?.lastOffset ?? -1 }));
    }
    return r;
  };

  const spec = defineProcessor<MixedTextRecord, 'batches' | 'state'>({
    name: o.name,
    input: { topics: [o.input], schema: 'mixed-text' },
    outputs: { batches: { topic: o.output, schema: 'token-batch', partitions: o.worldSize }, state: { topic: o.stateTopic, schema: 'sink-state', partitions: 1, latestPerKey: true } },
    handle: (rec) => {
      const m = rec.value;
      const offset = Number(rec.source.offset);
      const encoded = tok.encode(m.text, null, { addSpecialTokens: false });
      // Packing is sequential per run: each record's step is queued when the handler is called, in input order.
      return serially(async (): Promise<HandlerResult<'batches' | 'state'>> => {
        const r = runState(m.runId);
        // A record at or before the last one packed was already packed (a replay after a restart): skip it. By input
        // offset: mix indices need not rise in topic order (the fused stage numbers a chunk's texts as they finish and
        // writes them in input order). A state saved before offsets were kept falls back to the mix index.
        const replayed = r.lastOffset >= 0 ? offset <= r.lastOffset : m.mixIndex <= r.lastMixIndex;
        if (replayed) return { skip: 'already packed (at or before the saved state)' };
        const ids = (await encoded).getIds();
        const emits: Emit<'batches' | 'state'>[] = [];
        for (const b of r.packer.push(ids, m.source)) {
          const g = r.globalStep++;
          const { dtype, bytes } = encodeTokenIds(b.tokens, vocabSize);
          const batch: TokenBatchRecord = {
            runId: m.runId,
            globalStep: g,
            rank: g % o.worldSize,
            step: Math.floor(g / o.worldSize),
            seqLen: o.seqLen,
            batchSize: o.batchSize,
            vocabSize,
            dtype,
            tokens: bytes,
            sources: Object.entries(b.sources).map(([source, tokens]) => ({ source, tokens })),
            lastMixIndex: m.mixIndex,
            createdAt: Date.now(),
          };
          emits.push({ to: 'batches', key: `${m.runId}/${g}`, value: batch, partition: batch.rank });
        }
        r.lastMixIndex = m.mixIndex;
        r.lastOffset = offset;
        // The runtime encodes only a chunk's last state per run, at the chunk's end, when this packer holds exactly
        // that record's state: serialising it lazily keeps the per-record cost off the hot path.
        const packer = r.packer;
        emits.push({ to: 'state', key: m.runId, value: { runId: m.runId, globalStep: r.globalStep, lastMixIndex: m.mixIndex, lastOffset: offset, get packer() { return JSON.stringify(packer.state()); } } });
        return emits;
      });
    },
  });
  return {
    spec,
    vocabSize,
    async start() {
      await saved.start();
      await saved.ready();
    },
    stop: () => saved.stop(),
  };
}
