import { describe, expect, it } from 'vitest';
import { flag, flagTable, parseFlags } from '../../ops/cli/flags.ts';
import { FLAGS } from '../../ops/cli/command-flags.ts';
import { commandHelp, COMMANDS } from '../../ops/cli/command-help.ts';
import { UsageError } from '../../ops/cli/args.ts';

const specs = {
  rounds: flag.int('rounds of synthesis', 2, { placeholder: 'M' }),
  seed: flag.int('seed', undefined, { min: 0 }),
  temperature: flag.number('sampling temperature', 0, { min: 0, max: 2 }),
  guided: flag.choice(['gbnf', 'off'], 'guided decoding', 'gbnf'),
  input: flag.list('FILE', 'inputs'),
  sizes: flag.ints('sizes', [1, 2]),
  prefix: flag.setting('IPT_TOPIC_PREFIX', 'P'),
  json: flag.switch('JSON'),
};

describe('flags, defined once', () => {
  it('read argv into typed values with their defaults, and a flag standing for a variable takes the variable', () => {
    const { values, positionals } = parseFlags('t', ['data', '--rounds', '3', '--input', 'a.jsonl,b.jsonl', '--input', 'c.jsonl', '--json'], specs, { IPT_TOPIC_PREFIX: 'lab' });
    expect(positionals).toEqual(['data']);
    expect(values).toEqual({ rounds: 3, seed: undefined, temperature: 0, guided: 'gbnf', input: ['a.jsonl', 'b.jsonl', 'c.jsonl'], sizes: [1, 2], prefix: 'lab', json: true });
    expect(parseFlags('t', ['--prefix', 'exp', '--sizes', '10,20', '--temperature', '0.7'], specs, {}).values).toMatchObject({ prefix: 'exp', sizes: [10, 20], temperature: 0.7 });
    expect(parseFlags('t', [], specs, {}).values.prefix).toBe('ipt');
  });

  it('refuse a bad value in one line naming the command and the flag (exit 2), before anything runs', () => {
    const bad: [string[], string][] = [
      [['--rounds', '0'], 't: --rounds must be an integer ≥ 1 (got 0)'],
      [['--rounds', '2.5'], 't: --rounds must be an integer ≥ 1 (got 2.5)'],
      [['--seed', '-1'], "t: Option '--seed' argument is ambiguous."],
      [['--temperature', 'hot'], 't: --temperature must be a number in [0, 2] (got hot)'],
      [['--guided', 'regex'], 't: --guided must be gbnf or off (got regex)'],
      [['--sizes', '1,x'], 't: --sizes must be whole numbers ≥ 1, comma-separated (got 1,x)'],
      [['--prefix', 'a b'], 't: --prefix a b: expected letters, digits, ".", "_" or "-"'],
      [['--frobnicate'], "t: Unknown option '--frobnicate'"],
    ];
    for (const [argv, message] of bad) {
      expect(() => parseFlags('t', argv, specs, {}), argv.join(' ')).toThrow(UsageError);
      expect(() => parseFlags('t', argv, specs, {}), argv.join(' ')).toThrow(message);
    }
  });

  it('print one help line per flag with its placeholder, default and variable', () => {
    const lines = flagTable(specs);
    expect(lines).toHaveLength(Object.keys(specs).length);
    expect(lines[0]).toMatch(/^ {2}--rounds M +rounds of synthesis \(default 2\)$/);
    expect(lines.find((l) => l.includes('--prefix'))).toMatch(/\(default ipt; IPT_TOPIC_PREFIX\)$/);
    expect(lines.find((l) => l.includes('--json'))).toMatch(/^ {2}--json +JSON$/);
  });

  it('are in every command’s --help: each flag a command takes is listed there', () => {
    for (const [key, commandSpecs] of Object.entries(FLAGS)) {
      const command = key.split(' ')[0]!;
      expect(COMMANDS[command], key).toBeDefined();
      const help = commandHelp(command);
      for (const name of Object.keys(commandSpecs)) expect(help, `${key} --${name}`).toContain(`--${name}`);
    }
  });
});

describe('the settings checked before a command runs', () => {
  it('are the groups it reads and the CLI’s own, less those whose flag it was given', async () => {
    const { settingsToCheck } = await import('../../ops/cli/command-help.ts');
    expect(settingsToCheck('env', []).sort()).toEqual(['IPT_DEBUG', 'IPT_LOG_FORMAT', 'IPT_LOG_LEVEL', 'IPT_SHUTDOWN_TIMEOUT_MS']);
    expect(settingsToCheck('stack', ['up'])).toContain('IPT_STACK_BROKERS');
    expect(settingsToCheck('stack', ['up', '--brokers', '3'])).not.toContain('IPT_STACK_BROKERS');
    expect(settingsToCheck('serve', ['--token=0123456789abcdef'])).not.toContain('IPT_API_TOKEN');
    expect(settingsToCheck('serve', [])).toContain('IPT_API_TOKEN');
    expect(settingsToCheck('pipeline', ['run', '--prefix', 'x'])).not.toContain('IPT_TOPIC_PREFIX');
  });
});
