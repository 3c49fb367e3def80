import { PAIR_KIND_FILTERS } from '../../connectors/clickhouse/run-queries.ts';
import { PRESETS } from '../../processors/pipeline/run-config.ts';
import { STAGES } from '../../processors/pipeline/pipeline-topics.ts';

/**
 * JSON schemas of the control routes' bodies and the dashboard's query: fastify answers 400 naming the field before
 * a handler runs, so a wrongly typed value never reaches the Avro writer (where it was a 500, or was stored as
 * given). The server's validator neither coerces types nor drops unknown fields (see serve.ts): "4096" is not an
 * integer, and a misspelt field is an error rather than silently ignored.
 */

// validateRun's rule for run ids, so a bad id is refused here with the rest.
const RUN_ID = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' } as const;
// Avro int and long (as a JS number) bounds.
const INT32_MAX = 2 ** 31 - 1;
const SEED = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

export const createRunBody = {
  type: 'object',
  additionalProperties: false,
  required: ['runId'],
  properties: {
    runId: RUN_ID,
    preset: { type: 'string', enum: Object.keys(PRESETS) },
    convertFraction: { type: 'number', minimum: 0, maximum: 1 },
    generalWeight: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    seed: SEED,
    model: { type: 'string', minLength: 1, maxLength: 1024 },
    maxModelLen: { type: 'integer', minimum: 2, maximum: INT32_MAX },
    maxNewTokens: { type: 'integer', minimum: 1, maximum: INT32_MAX },
    lengthEstimate: { type: 'string', enum: ['words', 'tokens'] },
    temperature: { type: 'number', minimum: 0 },
    // An open run has one round; the field is allowed so a client may say so.
    rounds: { type: 'integer', minimum: 1, maximum: 1 },
  },
} as const;

export const roundsStartBody = {
  type: 'object',
  additionalProperties: false,
  required: ['runId', 'round'],
  properties: {
    runId: RUN_ID,
    round: { type: 'integer', minimum: 0, maximum: INT32_MAX },
    newRunId: RUN_ID,
    seed: SEED,
  },
} as const;

export const replayBody = {
  type: 'object',
  additionalProperties: false,
  required: ['topic', 'from'],
  properties: {
    // Kafka's longest topic name.
    topic: { type: 'string', minLength: 1, maxLength: 249 },
    from: { type: 'string', minLength: 1, maxLength: 64 },
    stage: { type: 'string', enum: [...STAGES] },
  },
} as const;

/** Unknown parameters are ignored, as a browser's address bar may carry some; a repeated one is an error. */
export const dashboardQuery = {
  type: 'object',
  properties: {
    run: { type: 'string', maxLength: 1024 },
    // The sample browser's kind filter ('' for every kind).
    kind: { type: 'string', enum: ['', ...PAIR_KIND_FILTERS] },
  },
} as const;

