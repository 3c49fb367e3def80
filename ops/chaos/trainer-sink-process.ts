import { StageProcess } from './stage-process.ts';

/** How the trainer-kill scenario packs: small sequences, so that a few hundred texts make dozens of batches. */
export interface SinkShape {
  seqLen: number;
  batchSize: number;
  /** Data-parallel ranks: partitions of the token topic, and torchrun's processes per node. */
  worldSize: number;
}

/**
 * `ipt sink` as an OS process of its own, restarted (when it exits by itself) with the same arguments and environment:
 * the same consumer group and transactional id, so the new process fences the killed one's open transaction and
 * continues from the packing state committed with its batches.
 */
export function trainerSinkProcess(
  name: string,
  o: { prefix: string; tokenizer: string; eosToken: string; shape: SinkShape },
  env: NodeJS.ProcessEnv,
  logDir: string,
  /** Where its ops server answers /readyz (IPT_METRICS_PORT). */
  metricsPort: number,
): StageProcess {
  const { prefix, tokenizer, eosToken, shape } = o;
  const args = ['--tokenizer', tokenizer, '--eos-token', eosToken, '--world-size', String(shape.worldSize), '--seq-len', String(shape.seqLen), '--batch-size', String(shape.batchSize), '--prefix', prefix];
  // Exactly-once whatever the stages do: the batches and the packing state commit together, so a kill neither loses
  // nor repeats a batch.
  const p = new StageProcess(name, args, { ...env, IPT_EXACTLY_ONCE: 'true' }, logDir, metricsPort, undefined, ['sink']);
  p.supervise();
  return p;
}
