// The public surface of instruct-pt: the method as pure functions, the runtime, and the connectors.
export { formatSynthesizerInput, formatPairs, formatExample, formatEvaluationPrompt, type QAPair } from './processors/templating/synthesizer-format.ts';
export { parseSynthesizerOutput, plainPairs } from './processors/round-feedback/parse-output.ts';
export { classifyPair, isNoneOfThese, type PairKind, type TypedPair } from './processors/round-feedback/pair-kinds.ts';
export { wordsEstimate, type LengthEstimator } from './processors/templating/length-estimators.ts';
export {
  roundRanges,
  fewShotHistory,
  planPrompt,
  planRound,
  finishRound,
  appendEntry,
  type Collection,
  type CollectionEntry,
  type LengthBudget,
  type RoundPlan,
} from './processors/templating/multi-round.ts';
export { templateCollection, groupEntries, type TemplatedText } from './processors/pretrain-text/template-collection.ts';
export { MixSampler, mixIterables, type MixSource } from './processors/mixing/mix-sampler.ts';
export { f1Score, exactMatch, normalizeAnswer } from './processors/evaluation/f1.ts';

export { defineProcessor, deadLetterTopic, stageOf, type ProcessorSpec, type InputRecord, type Emit, type Stage } from './processors/runtime/processor.ts';
export { TopologyTestDriver } from './processors/pipeline/topology-test-driver.ts';
export { kafkaTables, type Tables } from './processors/runtime/tables.ts';
export { startProcessor, type RunningProcessor } from './processors/runtime/run-processor.ts';
export { runtimeConfig, type RuntimeConfig } from './processors/runtime/runtime-config.ts';
export { AvroSerde, IncompatibleSchemaError } from './processors/runtime/serde.ts';
export { locateStack } from './ops/stack/locate.ts';

export { SynthesisPool, type PoolOptions } from './connectors/llm/synthesis-pool.ts';
export { CompletionError } from './connectors/llm/completion-types.ts';
export type { CompletionRequest, CompletionResult, LlmClient, LlmPorts, LlmRequest } from './processors/pipeline/llm-port.ts';
export { EmbeddedSynthesizer } from './connectors/llm/embedded-llama.ts';
export { startEmbeddedServer } from './connectors/llm/embedded-server.ts';
export { pairGrammarGbnf, pairGrammarRegex, guidedFields } from './connectors/llm/pair-grammar.ts';
export { localTokenizerEstimator, serverTokenEstimator } from './connectors/llm/token-estimators.ts';
export { readTextRecords } from './connectors/files/text-records.ts';
export { runAugment, type AugmentOptions, type AugmentSummary } from './ops/jobs/augment.ts';
