#!/usr/bin/env node
// Exit codes: 0 the command's work is done, or a long-running command stopped on SIGTERM/SIGINT; 1 it failed (a stage
// that stopped by itself, a shutdown that did not finish in time or was interrupted by a second signal, work that
// stopped silently); 2 usage or configuration error.
import { checkSettings, setting } from '../../processors/runtime/settings.ts';
import { UsageError } from './args.ts';
import { COMMANDS, commandHelp, overallHelp, settingsToCheck } from './command-help.ts';
import { ConfigError } from '../../processors/runtime/runtime-config.ts';
import { exitIfUnsettled, StageFailure } from '../../processors/runtime/run-until-signal.ts';
import { JobError } from '../../processors/runtime/job-error.ts';
import { unreachableService } from './service-errors.ts';
import { readFileSync } from 'node:fs';
import { packagePath } from '../../processors/runtime/package-root.ts';

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
  shards: async () => (await import('./shards-command.ts')).shardsCommand,
  'serve-llm': async () => (await import('./serve-llm-command.ts')).serveLlmCommand,
  chaos: async () => (await import('./chaos-command.ts')).chaosCommand,
  env: async () => (await import('./env-command.ts')).envCommand,
  synthesizer: async () => (await import('./synthesizer-command.ts')).synthesizerCommand,
  judge: async () => (await import('./judge-command.ts')).judgeCommand,
  report: async () => (await import('./report-command.ts')).reportCommand,
};

/** A setting for the error path, which must not throw: its default where the variable is not valid. */
function settingOr<T>(name: 'IPT_DEBUG', fallback: T): boolean | T {
  try {
    return setting(name);
  } catch {
    return fallback;
  }
}

const version = (): string => (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const about = rest[0];
    if (about !== undefined && !COMMANDS[about]) throw new UsageError(`help: unknown command "${about}"`);
    process.stdout.write(about ? commandHelp(about) : overallHelp(version()));
    return 0;
  }
  if (!name) {
    process.stderr.write(overallHelp(version()));
    return 2;
  }
  const load = commands[name];
  if (!load) throw new UsageError(`unknown command "${name}" (ipt help lists them)`);
  // Help before anything else: no flag is checked, no service reached, nothing installed.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(name));
    return 0;
  }
  // Checked before any work starts, not when the first signal comes or the first line is logged.
  checkSettings(settingsToCheck(name, rest));
  return (await load())(rest);
}

// --debug, anywhere before a `--`, is the CLI's own (as IPT_DEBUG): every error is printed with its stack.
const given = process.argv.slice(2);
const cut = given.indexOf('--');
const debugAt = given.findIndex((a, i) => a === '--debug' && (cut < 0 || i < cut));
const argv = debugAt < 0 ? given : given.filter((_, i) => i !== debugAt);
const work = main(argv);
exitIfUnsettled([argv[0] ?? 'ipt', ...argv.slice(1, 2).filter((a) => !a.startsWith('-'))].join(' '), work);
work.then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (debugAt >= 0 || settingOr('IPT_DEBUG', false)) {
      process.stderr.write(`ipt: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(err instanceof UsageError || err instanceof ConfigError ? 2 : 1);
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`ipt: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof StageFailure || err instanceof JobError) {
      process.stderr.write(`ipt: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`ipt: ${unreachableService(err) ?? (err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    process.exit(1);
  },
);
