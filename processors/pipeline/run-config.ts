import { hashString } from '../pretrain-text/seeded-random.ts';
import type * as Avro from './avro-records.generated.ts';

/**
 * One run's settings, read by every stage before it handles the run's records: schemas/run-config.avsc's fields,
 * with the choices Avro keeps as strings narrowed. `convertedTexts` is null for an open run (fed by HTTP ingest),
 * which has a single round.
 */
export type RunConfig = Omit<Avro.RunConfig, 'preset' | 'lengthEstimate' | 'generalOnExhausted'> & {
  preset: PresetName;
  lengthEstimate: 'words' | 'tokens';
  generalOnExhausted: 'leave' | 'restart';
};

export type PresetName = 'none' | 'from-scratch' | 'domain-adaptive';

export interface Preset {
  rounds: number;
  convertFraction: number;
  generalWeight: number;
}

/**
 * The paper's two settings (docs/method.md §5). From scratch: a fifth of the texts (40M of 200M) converted in 2 rounds, the
 * rest raw. Domain-adaptive: every text converted in 3 rounds, mixed with general instructions. The general
 * shares are instruct-pt's defaults (the paper does not fix them); every value can be overridden.
 */
export const PRESETS: Record<PresetName, Preset> = {
  none: { rounds: 1, convertFraction: 1, generalWeight: 0 },
  'from-scratch': { rounds: 2, convertFraction: 0.2, generalWeight: 0.05 },
  'domain-adaptive': { rounds: 3, convertFraction: 1, generalWeight: 0.5 },
};

export function isPreset(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** Where a converted text sits: its round and its position within the round. */
export interface Placement {
  round: number;
  position: number;
}

export function placement(run: Pick<RunConfig, 'roundSize' | 'rounds'>, seq: number): Placement {
  if (run.rounds === 1) return { round: 0, position: seq };
  const round = Math.floor(seq / run.roundSize);
  return { round, position: seq - round * run.roundSize };
}

/** Texts in round r: B, except a short (or empty) last round. An open run's single round has no bound. */
export function roundLength(run: Pick<RunConfig, 'roundSize' | 'rounds' | 'convertedTexts'>, round: number): number {
  if (round < 0 || round >= run.rounds) return 0;
  if (run.convertedTexts === null) return Infinity;
  return Math.max(0, Math.min(run.roundSize, run.convertedTexts - round * run.roundSize));
}

export const seqOf = (run: Pick<RunConfig, 'roundSize'>, p: Placement) => p.round * run.roundSize + p.position;

/** Does text position i of round r continue a collection of round r − 1 (rather than start a new one)? */
export function continuesCollection(run: RunConfig, p: Placement): boolean {
  return p.round > 0 && p.position < roundLength(run, p.round - 1);
}

/** Does the collection finished at position i of round r go on into round r + 1? */
export function hasNextText(run: RunConfig, p: Placement): boolean {
  return p.position < roundLength(run, p.round + 1);
}

/** A uniform number in [0, 1) from the seed and a text id: the stable order in which a preset picks texts to convert. */
export function convertRank(seed: number, id: string): number {
  return hashString(`${seed}\u0000convert\u0000${id}`) / 2 ** 32;
}

/**
 * Which texts a bounded run converts: exactly round(fraction · n) of them, those with the lowest rank, so the
 * choice is deterministic for a seed and independent of input order.
 */
export function chooseConverted(ids: readonly string[], fraction: number, seed: number): boolean[] {
  if (fraction >= 1) return ids.map(() => true);
  const k = Math.round(fraction * ids.length);
  const order = ids.map((id, i) => ({ i, r: convertRank(seed, id) })).sort((a, b) => a.r - b.r || a.i - b.i);
  const out = ids.map(() => false);
  for (let j = 0; j < k; j++) out[order[j]!.i] = true;
  return out;
}

/** Validates a run configuration, naming the field. */
export function validateRun(run: RunConfig): RunConfig {
  const fail = (m: string) => {
    throw new Error(`run ${run.runId}: ${m}`);
  };
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(run.runId)) fail('run id must be 1–128 letters, digits, ".", "_" or "-"');
  if (!Number.isInteger(run.rounds) || run.rounds < 1) fail(`rounds must be a positive integer (got ${run.rounds})`);
  if (run.convertedTexts === null && run.rounds !== 1) fail('an open run (texts arriving over HTTP) has one round; multi-round runs need their texts up front');
  if (!(run.convertFraction >= 0 && run.convertFraction <= 1)) fail(`convert fraction must be in [0, 1] (got ${run.convertFraction})`);
  if (!(run.generalWeight >= 0 && run.generalWeight < 1)) fail(`general weight must be in [0, 1) (got ${run.generalWeight})`);
  if (!(run.maxNewTokens > 0 && run.maxModelLen > run.maxNewTokens)) fail(`max-model-len (${run.maxModelLen}) must exceed max-new-tokens (${run.maxNewTokens}) > 0`);
  if (!(run.temperature >= 0)) fail(`temperature must be ≥ 0 (got ${run.temperature})`);
  return run;
}
