import { STAGES } from '../../processors/pipeline/pipeline-topics.ts';
import { SHARD_FORMATS } from '../../trainers/shards/shard-manifest.ts';
import { SCENARIOS } from '../chaos/chaos-cases.ts';
import { flag, type FlagSpecs } from './flags.ts';

/**
 * Every command's flags, defined once (ops/cli/flags.ts): the commands parse their argv with these, and `--help`
 * prints them. Kept free of the commands' own imports, so that help loads no client, model or job.
 */

const MODEL = 'instruction-pretrain/instruction-synthesizer';
const json = flag.switch('print the summary as one JSON line');

/** How the stages reach the LLM and the topics: `ipt pipeline up|run`, `ipt serve`, `ipt rounds start`. */
export const PIPELINE_FLAGS = {
  'llm-url': flag.setting('IPT_LLM_URL', 'URL[,URL…]', 'LLM base URL(s), comma-separated (OpenAI-compatible completions)'),
  model: flag.text('NAME', 'the model name sent to the LLM servers', MODEL),
  concurrency: flag.int('LLM requests in flight per endpoint', 32),
  retries: flag.int('retries of a failed LLM request', 4, { min: 0 }),
  'timeout-ms': flag.int('how long one LLM request may take', 120_000, { placeholder: 'MS' }),
  'llm-deadline-ms': flag.setting('IPT_LLM_DEADLINE_MS', 'MS', 'how long one text may wait for the LLM, retries and outages included'),
  tokenizer: flag.text('FILE', "the synthesizer's tokenizer.json (for --length-estimate tokens without a tokenize endpoint)"),
  prefix: flag.setting('IPT_TOPIC_PREFIX', 'P', "prefix of the pipeline's topics and consumer groups"),
  partitions: flag.int('partitions of the topics the pipeline creates', 4),
  stages: flag.words(STAGES, "the stages to run here (default: the topology's)", undefined, 'S,S,…'),
  topology: flag.setting('IPT_TOPOLOGY', 'staged|fused', 'staged: a stage per consumer group; fused: templating to mixing in one'),
  'max-new-tokens': flag.int('tokens the synthesizer (and the evaluation) may generate per request', 400),
  temperature: flag.number('sampling temperature', 0, { min: 0, max: 100, placeholder: 'T' }),
};

/** A run's settings, as `ipt pipeline run` and `ipt serve` (the defaults of its open runs) take them. */
export const RUN_FLAGS = {
  run: flag.text('ID', 'the run id', undefined, 'generated'),
  rounds: flag.int('rounds of synthesis', undefined, { placeholder: 'M', shown: "the preset's, else 2" }),
  preset: flag.choice(['none', 'from-scratch', 'domain-adaptive'], 'the paper’s settings for pre-training from scratch or domain-adaptive continual pre-training', 'none'),
  'convert-fraction': flag.number('share of the texts converted (the rest kept raw)', undefined, { min: 0, max: 1, placeholder: 'F' }),
  'general-weight': flag.number('token share of general instructions in the mix', undefined, { min: 0, max: 0.999, placeholder: 'W' }),
  'general-restart': flag.switch('start the general instructions over when they run out (else the mix goes on without them)'),
  'max-model-len': flag.int("the synthesizer's context, in tokens", 4096),
  'length-estimate': flag.choice(['tokens', 'words'], 'how a few-shot prompt’s length is estimated', 'tokens'),
  seed: flag.int('seed of the templates and the mix', 0, { min: 0 }),
};

const runTimeout = flag.int('how long the whole run may take', 1_800_000, { placeholder: 'MS' });
const external = flag.switch('the stages run elsewhere (pipeline up, serve --with-pipeline): only ingest and wait');

export const FLAGS = {
  demo: {
    rounds: flag.int('rounds of synthesis', 2, { placeholder: 'M' }),
    guided: flag.choice(['gbnf', 'off'], 'guided decoding of the pairs with a grammar', 'gbnf'),
    input: flag.text('FILE', 'the texts (JSONL or Parquet)', undefined, 'the bundled examples/sample-corpus.jsonl'),
    batch: flag.switch('the embedded augment job instead of the streaming pipeline'),
    'output-dir': flag.text('DIR', "where --batch writes its files", undefined, '.stack/demo'),
    json,
  },
  stack: {
    brokers: flag.setting('IPT_STACK_BROKERS', 'N', 'Kafka nodes (1: the single PLAINTEXT broker; 3: a replicated KRaft cluster)'),
    secure: flag.switch('SASL_SSL (SCRAM) client listener, TLS between nodes, ACLs enforced (IPT_STACK_SECURE)'),
    wipe: flag.switch('down: delete the data too'),
    json: flag.switch('status: one JSON line'),
  },
  models: {
    trainer: flag.switch("install: also the trainer's Python environment (.stack/venv)"),
  },
  'serve-llm': {
    model: flag.text('FILE.gguf', 'the GGUF model to serve'),
    port: flag.int('port', 8000, { min: 0, placeholder: 'P' }),
    host: flag.text('H', 'address to listen on', '127.0.0.1'),
    parallel: flag.int('sequences decoded in parallel', 4),
    'context-size': flag.int('tokens of context per sequence', 4096),
    gpu: flag.choice(['auto', 'off'], 'CUDA/Vulkan/Metal when present, or the CPU', 'auto'),
    'api-key': flag.text('K', 'the bearer token clients must send (prefer IPT_LLM_API_KEY: a flag is visible in the process list)'),
  },
  smoke: {
    records: flag.int('sample texts to send through', 1000),
    json,
  },
  processor: {
    input: flag.text('TOPIC', 'the topic to read'),
    output: flag.text('TOPIC', 'the topic to write'),
    name: flag.text('GROUP', 'the consumer group', 'identity'),
    partitions: flag.int('partitions of the output topic', 1),
  },
  augment: {
    input: flag.text('FILE', 'the texts (.jsonl or .parquet)'),
    output: flag.text('FILE.jsonl', 'the pre-training texts'),
    'llm-url': flag.text('URL[,URL…]', 'LLM base URL(s), comma-separated'),
    'collections-output': flag.text('FILE.jsonl', 'also the collections (the reference’s format)'),
    rounds: flag.int('rounds of synthesis', 2, { placeholder: 'M' }),
    model: flag.text('NAME', 'the model name sent to the LLM servers', MODEL),
    'max-model-len': flag.int("the synthesizer's context, in tokens", 4096),
    'max-new-tokens': flag.int('tokens generated per request', 400),
    'length-estimate': flag.choice(['tokens', 'words'], 'how a few-shot prompt’s length is estimated', 'tokens'),
    tokenizer: flag.text('FILE', "the synthesizer's tokenizer.json"),
    temperature: flag.number('sampling temperature', 0, { min: 0, max: 100, placeholder: 'T' }),
    seed: flag.int('seed of the templates', 0, { min: 0 }),
    concurrency: flag.int('LLM requests in flight per endpoint', 32),
    retries: flag.int('retries of a failed LLM request', 4, { min: 0 }),
    'timeout-ms': flag.int('how long one LLM request may take', 120_000, { placeholder: 'MS' }),
    'deadline-ms': flag.int('how long one text may wait for the LLM, retries included', 600_000, { placeholder: 'MS' }),
    guided: flag.choice(['off', 'gbnf', 'regex'], 'guided decoding of the pairs', 'off'),
    'batch-prompts': flag.int('prompts per completions request', 1),
    'allow-rejects': flag.switch('exit 0 even when lines were rejected or texts failed'),
    json,
  },
  'pipeline describe': {
    topology: PIPELINE_FLAGS.topology,
    prefix: PIPELINE_FLAGS.prefix,
    partitions: PIPELINE_FLAGS.partitions,
    mermaid: flag.switch('a Mermaid flowchart instead of text'),
  },
  'pipeline up': PIPELINE_FLAGS,
  'pipeline run': {
    input: flag.text('FILE', 'the texts (.jsonl, .parquet, or - for stdin)'),
    ...PIPELINE_FLAGS,
    ...RUN_FLAGS,
    general: flag.text('FILE', 'general instructions to mix in'),
    evaluation: flag.text('FILE', 'evaluation records (F1 zero- and few-shot, into ClickHouse)'),
    output: flag.text('FILE', 'also write the mixed stream (.jsonl or .parquet)'),
    external,
    'run-timeout-ms': runTimeout,
    json,
  },
  serve: {
    port: flag.int('port', 8080, { min: 0, placeholder: 'P' }),
    host: flag.text('H', 'address to listen on', '127.0.0.1'),
    token: flag.setting('IPT_API_TOKEN', 'T', 'bearer token for ingest and control, at least 16 characters (prefer the variable: a flag is visible in the process list)'),
    'with-pipeline': flag.switch("run the pipeline's stages in this process too"),
    'max-records': flag.int('records per ingest request', 10_000),
    'max-text-bytes': flag.setting('IPT_MAX_TEXT_BYTES', 'B', 'the largest text accepted, in UTF-8 bytes'),
    'body-bytes': flag.int('the largest request body', 64 << 20, { placeholder: 'B' }),
    'lag-interval-ms': flag.int('how often consumer lag, dead letters are sampled into ClickHouse', 10_000, { placeholder: 'MS' }),
    ...PIPELINE_FLAGS,
    ...RUN_FLAGS,
  },
  sink: {
    tokenizer: flag.text('FILE', "the trainer's tokenizer.json"),
    'eos-token': flag.text('TOKEN', 'the token that ends each text'),
    'world-size': flag.int('data-parallel ranks (one partition each)', undefined),
    'seq-len': flag.int('tokens per packed sequence', 2048),
    'batch-size': flag.int('sequences per rank per step', 8),
    prefix: PIPELINE_FLAGS.prefix,
  },
  shards: {
    run: flag.text('ID', 'the run whose token batches to write'),
    out: flag.text('DIR', 'where the shards go (DIR/<run>/)'),
    format: flag.words(SHARD_FORMATS, 'shard formats', [...SHARD_FORMATS]),
    'shard-mb': flag.int('MiB of token ids per shard', 256),
    prefix: PIPELINE_FLAGS.prefix,
    follow: flag.switch('keep running, writing shards as batches arrive'),
    'idle-flush-s': flag.int('with --follow: write the last batches as a shard after this long without new ones', 60, { placeholder: 'S' }),
    json,
  },
  'rounds start': {
    run: flag.text('ID', 'the run whose rounds to re-run'),
    round: flag.int('the first round to re-run', undefined, { min: 0 }),
    'new-run': flag.text('ID', 'the id of the new run', undefined, '<run>-r<round>'),
    seed: flag.int('seed of the new run', undefined, { min: 0, shown: "the run's" }),
    ...PIPELINE_FLAGS,
    external,
    'run-timeout-ms': runTimeout,
    json,
  },
  replay: {
    topic: flag.text('TOPIC', 'the topic to process again'),
    from: flag.text('earliest|OFFSET|ISO-TIME', 'where the stages start again'),
    stage: flag.choice(STAGES, 'only this stage (default: every stage that reads the topic)'),
    prefix: PIPELINE_FLAGS.prefix,
    json,
  },
  audit: {
    run: flag.text('ID', 'the run to reconcile'),
    prefix: PIPELINE_FLAGS.prefix,
    sample: flag.int('ids to name per kind of problem', 20, { min: 0 }),
    json,
  },
  env: {
    markdown: flag.switch('the tables of docs/operations.md'),
  },
  synthesizer: {
    input: flag.list('FILE[,FILE…]', 'the task datasets (.jsonl or .parquet)'),
    output: flag.text('FILE.jsonl', 'the tuning sequences'),
    'max-per-dataset': flag.int('examples kept per dataset (the most pairs first)', 10_000, { placeholder: 'K' }),
    'max-len': flag.int('the longest sequence, by the length estimate', 4096),
    'length-estimate': flag.choice(['words', 'tokens'], 'how a sequence’s length is estimated', undefined),
    tokenizer: flag.text('FILE', "the synthesizer's tokenizer.json (--length-estimate tokens)"),
    map: flag.text('dataset=F,context=F,question=F,answer=F', 'field names of another layout (dotted names reach into objects)'),
    'allow-rejects': flag.switch('exit 0 even when records were rejected'),
    json,
  },
  'bench runtime': {
    records: flag.int('records per run', 100_000),
    runs: flag.int('runs per side (medians)', 5),
    'record-bytes': flag.int('bytes per record', 1000),
    json,
  },
  'bench synthesis': {
    runs: flag.int('runs per measurement (medians)', 3),
    json,
  },
  'bench pipeline': {
    records: flag.int('texts per run', 20_000),
    runs: flag.int('runs per side (medians)', 3),
    'record-bytes': flag.int('bytes per text', 1000),
    rounds: flag.int('rounds of synthesis', 2),
    topology: flag.choice(['both', 'fused', 'staged'], 'the topologies measured', 'both'),
    json,
  },
  'bench sink': {
    records: flag.int('texts per run', 20_000),
    runs: flag.int('runs per side (medians)', 3),
    'record-bytes': flag.int('bytes per text', 1000),
    json,
  },
  'bench scale': {
    records: flag.int('texts per run', 2000),
    runs: flag.int('runs per instance count (medians)', 3),
    'record-bytes': flag.int('bytes per text', 1000),
    'latency-ms': flag.int("the recorded LLM's latency per request", 50, { min: 0, placeholder: 'MS' }),
    concurrency: flag.int('LLM requests in flight per instance', 4),
    instances: flag.ints('instance counts measured', [1, 2, 4]),
    partitions: flag.int('partitions of the topics', undefined, { shown: 'max(4, instances)' }),
    json,
  },
  'bench memory': {
    texts: flag.ints('run sizes measured', [10_000, 100_000, 1_000_000]),
    topology: flag.choice(['fused', 'staged'], 'the topology measured', 'fused'),
    rounds: flag.int('rounds of synthesis', 2),
    partitions: flag.int('partitions of the topics', 4),
    concurrency: flag.int('handler calls in flight', 64),
    'run-timeout-ms': runTimeout,
    json,
  },
  'bench train': {
    config: flag.choice(['tiny-cpu', 'small-cpu', 'llama-0.5b', 'llama-1b'], 'the model trained', 'tiny-cpu'),
    ranks: flag.int('torchrun ranks', 2),
    steps: flag.int('steps per run', 20),
    fsdp: flag.switch('FSDP2 instead of DDP'),
    'peak-tflops': flag.number("the accelerator's peak TFLOP/s, for MFU where it is not known", undefined, { min: 1e-9, max: 1e9, placeholder: 'T' }),
    json,
  },
  chaos: {
    ci: flag.switch("the sized-down matrix CI runs"),
    scenarios: flag.words(SCENARIOS, `the fault scenarios: ${SCENARIOS.join(', ')}`, undefined, 'S,S,…'),
    topologies: flag.words(['staged', 'fused'], 'the topologies', undefined, 'staged,fused'),
    'exactly-once': flag.choice(['on', 'off', 'both'], 'the delivery guarantee', undefined),
    texts: flag.int('texts per run', undefined, { min: 10, shown: 'per scenario' }),
    kills: flag.int('kills of the stage process per run', undefined, { shown: 'per scenario' }),
    'sink-kills': flag.int('trainer-kill: kills of the trainer sink', undefined, { min: 1, shown: '1' }),
    'outage-s': flag.int('seconds each outage lasts', undefined, { shown: 'per scenario' }),
    rounds: flag.int('rounds of synthesis', 2, { placeholder: 'M' }),
    'session-timeout-ms': flag.int("the stages' consumer session", 10_000, { min: 6000, placeholder: 'MS' }),
    'llm-timeout-ms': flag.int("the stages' --timeout-ms", undefined, { min: 1000, placeholder: 'MS', shown: '120000' }),
    'run-timeout-ms': flag.int('how long one run may take', undefined, { placeholder: 'MS', shown: '1800000, --ci 300000' }),
    seed: flag.int('seed of the fault times', undefined, { min: 0, shown: 'random' }),
    logs: flag.text('DIR', 'keep the processes’ logs here'),
    save: flag.text('FILE|DIR/', 'also write the results (a DIR/ gets a dated file)'),
    json,
  },
} satisfies Record<string, FlagSpecs>;

export type CommandWithFlags = keyof typeof FLAGS;
