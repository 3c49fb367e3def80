// Generated from schemas/*.avsc by ops/schemas/record-types-codegen.ts (npm run -s gen:records): do not edit.
// The records' TypeScript shapes and their schemas' defaults; processors/pipeline/records.ts narrows and names them.

/** schemas/augmented-text.avsc: One pre-training text ready for mixing: a templated group of a finished collection (converted = true), or a text the preset keeps raw (converted = false). textIds are the raw texts it holds, each exactly once across the run. */
export interface AugmentedText {
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

/** The defaults schemas/augmented-text.avsc declares. */
export const AUGMENTED_TEXT_DEFAULTS: Pick<AugmentedText, 'inverted'> = {
  inverted: false,
};

/** schemas/evaluation-record.avsc: A gold instruction and response(s) about a context, for response-accuracy evaluation (docs/method.md §7). examples are the few-shot demonstrations (texts with gold pairs); without them only zero-shot is scored. */
export interface EvaluationRecord {
  id: string;
  runId: string;
  dataset: string;
  seen: boolean;
  context: string;
  instruction: string;
  responses: string[];
  examples: {
    context: string;
    pairs: {
      question: string;
      answer: string;
    }[];
  }[];
}

/** The defaults schemas/evaluation-record.avsc declares. */
export const EVALUATION_RECORD_DEFAULTS: Pick<EvaluationRecord, 'examples'> = {
  examples: [],
};

/** schemas/metric-event-batch.avsc: The metric events one processor emitted for one run while processing one chunk of its input, in input order. Batching is only transport: each event keeps its own id, the idempotency key of its ClickHouse row. */
export interface MetricEventBatch {
  events: MetricEvent[];
}

/** schemas/metric-event.avsc: A per-record quality or evaluation metric bound for ClickHouse. id is the idempotency key: a replayed event replaces, never adds. kind = synthesis (round feedback, one per synthesized text), evaluation (one per record and shot count) or judgement (the judge stage, one per judged pair). */
export interface MetricEvent {
  id: string;
  kind: string;
  runId: string;
  round: number;
  recordId: string;
  time: number;
  outcome: string;
  fewShot: boolean;
  pairs: number;
  /** Pairs before de-duplication. */
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
  /** Share of answer tokens found in the text. */
  grounding: number;
  latencyMs: number;
  promptTokens: number;
  completionTokens: number;
  /** The synthesizer's finish reason (length: the output was cut at max-new-tokens). */
  finishReason: string;
  dataset: string;
  shots: number;
  seen: boolean;
  f1: number;
  exactMatch: number;
  response: string;
  /** For the dashboard's sample browser: a sampled synthesis text's parsed pairs and the start of its context (null for the others). */
  sample: null | {
    /** The text's first characters (at most SAMPLE_CONTEXT_CHARS). */
    context: string;
    /** The whole text's length. */
    contextChars: number;
    pairs: {
      question: string;
      answer: string;
      kind: string;
    }[];
  };
  /** The judge's verdict on one synthesized pair (kind = judgement; null for the other kinds). */
  judgement: null | {
    /** The pair's place among its text's parsed pairs. */
    pairIndex: number;
    judgeModel: string;
    /** The judge's answer was read; false when it could not be, or the request failed (error says why). */
    judged: boolean;
    relevant: boolean;
    accurate: boolean;
    /** One of the judge's task categories; empty when not judged. */
    category: string;
    error: string;
    question: string;
    answer: string;
  };
}

/** The defaults schemas/metric-event.avsc declares. */
export const METRIC_EVENT_DEFAULTS: Pick<MetricEvent, 'round' | 'outcome' | 'fewShot' | 'pairs' | 'parsedPieces' | 'parseOk' | 'kindFree' | 'kindMc' | 'kindCot' | 'kindMcCot' | 'textChars' | 'outputChars' | 'questionChars' | 'answerChars' | 'grounding' | 'latencyMs' | 'promptTokens' | 'completionTokens' | 'finishReason' | 'dataset' | 'shots' | 'seen' | 'f1' | 'exactMatch' | 'response' | 'sample' | 'judgement'> = {
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
  finishReason: '',
  dataset: '',
  shots: 0,
  seen: false,
  f1: 0,
  exactMatch: 0,
  response: '',
  sample: null,
  judgement: null,
};

/** schemas/mixed-text.avsc: One text of the mixed training stream (docs/method.md §5), in mix order per run; the trainer sink reads these. */
export interface MixedText {
  id: string;
  runId: string;
  /** augmented | raw | general */
  source: string;
  sourceId: string;
  text: string;
  tokens: number;
  /** Position in the run's mixed stream. */
  mixIndex: number;
  /** The round that finished the text's collection (0 for raw and general texts). */
  round: number;
  /** The raw texts it holds (a domain text; empty for a general instruction), as in its augmented text. */
  textIds: string[];
  /** Instruction-response pairs templated into it. */
  pairs: number;
}

/** The defaults schemas/mixed-text.avsc declares. */
export const MIXED_TEXT_DEFAULTS: Pick<MixedText, 'round' | 'textIds' | 'pairs'> = {
  round: 0,
  textIds: [],
  pairs: 0,
};

/** schemas/mixer-state.avsc: The mixer's per-run counts, keyed by runId in a compacted changelog topic, so a restarted mixer goes on where it stopped. */
export interface MixerState {
  runId: string;
  /** Tokens emitted per source: domain, general. */
  emittedTokens: number[];
  generalCursor: number;
  generalLeft: boolean;
  mixIndex: number;
  /** When the mixer wrote these counts (ms since the epoch; 0 in records older than the field): the dashboard's mix share over time. */
  updatedAt: number;
}

/** The defaults schemas/mixer-state.avsc declares. */
export const MIXER_STATE_DEFAULTS: Pick<MixerState, 'updatedAt'> = {
  updatedAt: 0,
};

/** schemas/raw-text.avsc: One raw text as ingested. id survives every stage; source names the file and line (or endpoint) it came from. seq and round place a converted text in its run's rounds (docs/method.md §3); convert = false keeps it raw (the preset's choice). */
export interface RawText {
  id: string;
  runId: string;
  text: string;
  source: string;
  ingestedAt: number;
  /** Index among the run's converted texts; -1 for a text kept raw. */
  seq: number;
  round: number;
  convert: boolean;
}

/** The defaults schemas/raw-text.avsc declares. */
export const RAW_TEXT_DEFAULTS: Pick<RawText, 'runId' | 'source' | 'ingestedAt' | 'seq' | 'round' | 'convert'> = {
  runId: '',
  source: '',
  ingestedAt: 0,
  seq: -1,
  round: 0,
  convert: true,
};

/** schemas/round-collection.avsc: A collection finished in round 'round' at position 'position': the round pool from which text 'position' of the next round takes its few-shot examples (docs/method.md §3.7). */
export interface RoundCollection {
  runId: string;
  round: number;
  position: number;
  collectionId: string;
  /** The collection after the round, in order. */
  collection: {
    contextId: string;
    context: string;
    pairs: {
      question: string;
      answer: string;
    }[];
    inheritFromPrev: boolean;
    followedByNext: boolean;
    /** When not empty, 'context' is left out of this record (empty): it is the text of the raw-text record with this key in the raw topic, which is retained. Empty when the context is in the record. */
    contextFrom: string;
  }[];
  finishedAt: number;
}

/** schemas/run-config.avsc: One run's settings, keyed by runId in a compacted topic; every processor reads it before handling the run's records. */
export interface RunConfig {
  runId: string;
  createdAt: number;
  /** none | from-scratch | domain-adaptive */
  preset: string;
  rounds: number;
  /** Converted texts in the run; null for an open run (HTTP ingest), which has one round. */
  convertedTexts: null | number;
  /** B = ceil(convertedTexts / rounds). */
  roundSize: number;
  ingested: number;
  convertFraction: number;
  seed: number;
  model: string;
  maxModelLen: number;
  maxNewTokens: number;
  /** words | tokens */
  lengthEstimate: string;
  temperature: number;
  /** Share of general instruction tokens in the mixed stream. */
  generalWeight: number;
  /** leave | restart */
  generalOnExhausted: string;
  startRound: number;
  replayOf: null | string;
}

/** The defaults schemas/run-config.avsc declares. */
export const RUN_CONFIG_DEFAULTS: Pick<RunConfig, 'convertedTexts' | 'ingested' | 'generalWeight' | 'generalOnExhausted' | 'startRound' | 'replayOf'> = {
  convertedTexts: null,
  ingested: 0,
  generalWeight: 0,
  generalOnExhausted: 'leave',
  startRound: 0,
  replayOf: null,
};

/** schemas/sink-state.avsc: The trainer sink's per-run packing state, keyed by runId in a compacted changelog topic, so a restarted sink continues the token stream exactly. */
export interface SinkState {
  runId: string;
  globalStep: number;
  /** The packer's state as JSON (pending tokens, their sources, the rows of the batch being filled). */
  packer: string;
  lastMixIndex: number;
  /** The input offset of the last mixed record packed: a record at or below it is a replay. -1 in a state written before this field (the mix index decides then). */
  lastOffset: number;
}

/** The defaults schemas/sink-state.avsc declares. */
export const SINK_STATE_DEFAULTS: Pick<SinkState, 'lastOffset'> = {
  lastOffset: -1,
};

/** schemas/synthesis-request.avsc: A request to the synthesizer for one text of a round: zero-shot, or few-shot from its previous-round collection. The prompt is not stored: it is exactly the few-shot history of collection (when fewShot) followed by the text's synthesizer input, rebuilt by requestPrompt(). */
export interface SynthesisRequest {
  id: string;
  runId: string;
  round: number;
  /** The text's index within its round. */
  position: number;
  text: string;
  fewShot: boolean;
  /** The previous-round collection this text continues (its last entry's followedByNext decided), or empty. */
  collection: {
    contextId: string;
    context: string;
    pairs: {
      question: string;
      answer: string;
    }[];
    inheritFromPrev: boolean;
    followedByNext: boolean;
  }[];
  /** The id of the collection's first text: its key for prefix-cache affinity. */
  collectionId: string;
  createdAt: number;
}

/** schemas/synthesis-result.avsc: The synthesizer's output for one request. outcome: ok (output holds the continuation), skipped (empty text, or too long for the model even alone: kept as a raw entry), failed (after retries; the request is dead-lettered and the collection goes on without this text). */
export interface SynthesisResult {
  id: string;
  runId: string;
  round: number;
  position: number;
  text: string;
  fewShot: boolean;
  /** The previous-round collection this text continues (its last entry's followedByNext decided), or empty. */
  collection: {
    contextId: string;
    context: string;
    pairs: {
      question: string;
      answer: string;
    }[];
    inheritFromPrev: boolean;
    followedByNext: boolean;
  }[];
  collectionId: string;
  outcome: string;
  reason: string;
  output: string;
  promptChars: number;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  attempts: number;
  /** Why generation stopped, as the server said (stop; length: cut at max-new-tokens); empty when it said nothing or no call was made. */
  finishReason: string;
  finishedAt: number;
}

/** The defaults schemas/synthesis-result.avsc declares. */
export const SYNTHESIS_RESULT_DEFAULTS: Pick<SynthesisResult, 'reason' | 'output' | 'promptChars' | 'promptTokens' | 'completionTokens' | 'latencyMs' | 'attempts' | 'finishReason' | 'finishedAt'> = {
  reason: '',
  output: '',
  promptChars: 0,
  promptTokens: 0,
  completionTokens: 0,
  latencyMs: 0,
  attempts: 0,
  finishReason: '',
  finishedAt: 0,
};

/** schemas/token-batch.avsc: One data-parallel rank's batch for one training step: batchSize sequences of seqLen + 1 token ids (inputs are [:-1], targets [1:]), little-endian uint16 or uint32 in tokens. Written to partition `rank` of the token topic; a rank's step k is its k-th record. */
export interface TokenBatch {
  runId: string;
  /** Batch index over all ranks: rank = globalStep mod worldSize, step = globalStep div worldSize. */
  globalStep: number;
  rank: number;
  step: number;
  seqLen: number;
  batchSize: number;
  vocabSize: number;
  /** uint16 | uint32 */
  dtype: string;
  tokens: Buffer;
  /** New tokens per mix source (augmented, raw, general). */
  sources: {
    source: string;
    tokens: number;
  }[];
  /** The mixed record whose tokens completed this batch. */
  lastMixIndex: number;
  createdAt: number;
}
