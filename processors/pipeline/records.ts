import type { QAPair } from '../templating/synthesizer-format.ts';
import type { CollectionEntry } from '../templating/multi-round.ts';

/** TypeScript shapes of the pipeline's Avro records (schemas/*.avsc is the source of truth). */
export interface RawTextRecord {
  id: string;
  runId: string;
  text: string;
  source: string;
  ingestedAt: number;
  seq: number;
  round: number;
  convert: boolean;
}

/** A raw text as any producer writes it (ingest, the smoke test, benchmarks): the rest takes the schema's defaults. */
export type RawText = Pick<RawTextRecord, 'id' | 'runId' | 'text' | 'source' | 'ingestedAt'> & Partial<Pick<RawTextRecord, 'seq' | 'round' | 'convert'>>;

/** A collection entry that knows which raw text it is, so every text can be accounted for downstream. */
export interface PipelineEntry extends CollectionEntry {
  contextId: string;
  pairs: QAPair[];
  /**
   * In a round-pool record: the key of the raw-text record whose text the context is, when the record leaves the
   * context out (see pool-contexts.ts); empty when the context is in the record.
   */
  contextFrom?: string;
  /** In memory only: the key of the raw-text record this entry's context came from, when known. */
  rawKey?: string;
}

export interface SynthesisRequestRecord {
  id: string;
  runId: string;
  round: number;
  position: number;
  text: string;
  fewShot: boolean;
  collection: PipelineEntry[];
  collectionId: string;
  createdAt: number;
}

export type SynthesisOutcome = 'ok' | 'skipped' | 'failed';

export interface SynthesisResultRecord extends Omit<SynthesisRequestRecord, 'createdAt'> {
  outcome: SynthesisOutcome;
  reason: string;
  output: string;
  promptChars: number;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  attempts: number;
  finishedAt: number;
}

export interface RoundCollectionRecord {
  runId: string;
  round: number;
  position: number;
  collectionId: string;
  collection: PipelineEntry[];
  finishedAt: number;
}

export interface AugmentedTextRecord {
  id: string;
  runId: string;
  round: number;
  converted: boolean;
  text: string;
  textIds: string[];
  pairs: number;
  layout: string;
  inverted: boolean;
  createdAt: number;
}

export interface MixedTextRecord {
  id: string;
  runId: string;
  source: 'augmented' | 'raw' | 'general';
  sourceId: string;
  text: string;
  tokens: number;
  mixIndex: number;
  round: number;
  textIds: string[];
  pairs: number;
}

export interface MixerStateRecord {
  runId: string;
  emittedTokens: number[];
  generalCursor: number;
  generalLeft: boolean;
  mixIndex: number;
}

export interface MetricEventRecord {
  id: string;
  kind: 'synthesis' | 'evaluation';
  runId: string;
  round: number;
  recordId: string;
  time: number;
  outcome: string;
  fewShot: boolean;
  pairs: number;
  parsedPieces: number;
  parseOk: boolean;
  kindFree: number;
  kindMc: number;
  kindCot: number;
  kindMcCot: number;
  textChars: number;
  outputChars: number;
  questionChars: number;
  answerChars: number;
  grounding: number;
  latencyMs: number;
  promptTokens: number;
  completionTokens: number;
  dataset: string;
  shots: number;
  seen: boolean;
  f1: number;
  exactMatch: number;
  response: string;
}

export interface EvaluationRecord {
  id: string;
  runId: string;
  dataset: string;
  seen: boolean;
  context: string;
  instruction: string;
  responses: string[];
  examples: { context: string; pairs: QAPair[] }[];
}

/** schemas/metric-event-batch.avsc: the metric events of one run from one input chunk (the metrics topic's records). */
export interface MetricEventBatchRecord {
  events: MetricEventRecord[];
}

export const METRIC_DEFAULTS: Omit<MetricEventRecord, 'id' | 'kind' | 'runId' | 'recordId' | 'time'> = {
  round: 0,
  outcome: '',
  fewShot: false,
  pairs: 0,
  parsedPieces: 0,
  parseOk: false,
  kindFree: 0,
  kindMc: 0,
  kindCot: 0,
  kindMcCot: 0,
  textChars: 0,
  outputChars: 0,
  questionChars: 0,
  answerChars: 0,
  grounding: 0,
  latencyMs: 0,
  promptTokens: 0,
  completionTokens: 0,
  dataset: '',
  shots: 0,
  seen: false,
  f1: 0,
  exactMatch: 0,
  response: '',
};
