import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../ops/cli/command-help.ts';

/** Runs the CLI as the installed entry point does, with no stack anywhere: help must not need one. */
function ipt(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['ops/cli/bin.js', ...args], { env: { ...process.env, IPT_KAFKA_BROKERS: '127.0.0.1:1', IPT_STACK_DIR: '/nonexistent' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('the CLI’s help', () => {
  it('lists every command the CLI dispatches, and only those', () => {
    const main = readFileSync(new URL('../../ops/cli/main.ts', import.meta.url), 'utf8');
    const dispatched = [...main.matchAll(/^ {2}'?([a-z-]+)'?: async \(\) =>/gm)].map((m) => m[1]);
    expect(dispatched.sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  it('answers --help for every command with its usage, environment, examples and exit codes, exit 0, touching nothing', async () => {
    const names = Object.keys(COMMANDS);
    const results = await Promise.all(names.map((c) => ipt([c, '--help'])));
    names.forEach((c, i) => {
      const r = results[i]!;
      expect(r.code, `${c}: ${r.err}`).toBe(0);
      expect(r.out).toContain(`usage: ipt ${c}`.replace('usage: ipt pipeline', 'usage:'));
      expect(r.out).toContain('examples:');
      expect(r.out).toContain('exit codes: 0');
      if (COMMANDS[c]!.env.length > 0) expect(r.out).toMatch(/environment \(defaults and meanings: ipt env\):\n {2}\S/);
    });
  }, 120_000);

  it('prints the version, `ipt help` with exit 0, and the overview on stderr with exit 2 when no command is given', async () => {
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    const [v, help, helpOf, none, unknown] = await Promise.all([ipt(['--version']), ipt(['help']), ipt(['help', 'sink']), ipt([]), ipt(['frobnicate'])]);
    expect(v).toMatchObject({ code: 0, out: `${version}\n` });
    expect(help.code).toBe(0);
    expect(help.out).toContain('commands:');
    expect(helpOf.out).toContain('usage: ipt sink');
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toContain('commands:');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toBe('ipt: unknown command "frobnicate" (ipt help lists them)\n');
  }, 60_000);

  it('refuses a bad log setting in one line, before doing anything', async () => {
    const [level, format] = await Promise.all([
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['ops/cli/bin.js', 'smoke'], { env: { ...process.env, IPT_LOG_LEVEL: 'verbose', IPT_STACK_DIR: '/nonexistent' } });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code, err }));
      }),
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['ops/cli/bin.js', 'audit', '--run', 'x'], { env: { ...process.env, IPT_LOG_FORMAT: 'xml', IPT_STACK_DIR: '/nonexistent' } });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code, err }));
      }),
    ]);
    expect(level).toEqual({ code: 2, err: 'ipt: IPT_LOG_LEVEL=verbose: expected one of fatal, error, warn, info, debug, trace, silent\n' });
    expect(format).toEqual({ code: 2, err: 'ipt: IPT_LOG_FORMAT=xml: expected json or pretty\n' });
  }, 60_000);

  it('prints a mistake in one line, and with its stack under --debug (anywhere before --)', async () => {
    const [plain, debug, first] = await Promise.all([ipt(['pipeline', 'describe', '--partitions', '0']), ipt(['pipeline', 'describe', '--partitions', '0', '--debug']), ipt(['--debug', 'pipeline', 'describe', '--partitions', '0'])]);
    expect(plain).toMatchObject({ code: 2, err: 'ipt: pipeline describe: --partitions must be an integer ≥ 1 (got 0)\n' });
    for (const r of [debug, first]) {
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^ipt: Error: pipeline describe: --partitions must be an integer ≥ 1 \(got 0\)\n\s+at /);
    }
  }, 60_000);

  it('checks the demo’s flags before installing the model', async () => {
    const [guided, rounds] = await Promise.all([ipt(['demo', '--guided', 'bogus']), ipt(['demo', '--rounds', '0'])]);
    expect(guided).toMatchObject({ code: 2, err: 'ipt: demo: --guided must be gbnf or off (got bogus)\n' });
    expect(rounds).toMatchObject({ code: 2, err: 'ipt: demo: --rounds must be an integer ≥ 1 (got 0)\n' });
  }, 60_000);
});
