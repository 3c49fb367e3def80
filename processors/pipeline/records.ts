import type { QAPair } from '../templating/synthesizer-format.ts';
import type { CollectionEntry } from '../templating/multi-round.ts';
import type * as Avro from './avro-records.generated.ts';
import { METRIC_EVENT_DEFAULTS } from './avro-records.generated.ts';

/**
 * The pipeline's records as the stages use them: the shapes generated from schemas/*.avsc (the one definition of
 * every field: `npm run -s gen:records`), narrowed where the code knows more than Avro says (a kind, a source, an
 * outcome) and with the in-memory collection entry. Adding a field is done in the schema.
 */
export type RawTextRecord = Avro.RawText;

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

export type SynthesisRequestRecord = Omit<Avro.SynthesisRequest, 'collection'> & { collection: PipelineEntry[] };

export type SynthesisOutcome = 'ok' | 'skipped' | 'failed';

export type SynthesisResultRecord = Omit<Avro.SynthesisResult, 'collection' | 'outcome'> & { collection: PipelineEntry[]; outcome: SynthesisOutcome };

export type RoundCollectionRecord = Omit<Avro.RoundCollection, 'collection'> & { collection: PipelineEntry[] };

export type AugmentedTextRecord = Avro.AugmentedText;

export type MixedTextRecord = Omit<Avro.MixedText, 'source'> & { source: 'augmented' | 'raw' | 'general' };

export type MixerStateRecord = Avro.MixerState;

export type MetricEventRecord = Omit<Avro.MetricEvent, 'kind'> & { kind: 'synthesis' | 'evaluation' | 'judgement' };

export type EvaluationRecord = Avro.EvaluationRecord;

/** The metrics topic's records: the metric events of one run from one input chunk. */
export type MetricEventBatchRecord = Omit<Avro.MetricEventBatch, 'events'> & { events: MetricEventRecord[] };

export const METRIC_DEFAULTS: Omit<MetricEventRecord, 'id' | 'kind' | 'runId' | 'recordId' | 'time'> = METRIC_EVENT_DEFAULTS;
