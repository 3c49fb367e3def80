import { parseArgs } from 'node:util';
import { z } from 'zod';
import { flagOrSetting, SETTINGS, type SettingName, type SettingValue } from '../../processors/runtime/settings.ts';
import { UsageError } from './args.ts';

/**
 * A command's flags, defined once: each flag's type and validation (a zod schema over the raw value), its default,
 * what it means and, for a flag that stands for an environment variable, the variable (whose definition then parses
 * it). `parseFlags` reads argv with them (node:util's parser for the syntax) into typed, validated values with their
 * defaults, and `flagTable` prints them for `--help`, so usage, defaults and validation cannot drift apart.
 */
export interface ValueFlag<T> {
  kind: 'value';
  /** What the value is, in the help: N, FILE, URL… */
  placeholder: string;
  schema: z.ZodType<T, string>;
  fallback: T | undefined;
  /** The default as the help shows it, where it is worked out or worth words. */
  shown?: string;
  help: string;
  /** The environment variable the flag stands for: used when the flag is not given, and named in the help. */
  env?: SettingName;
}
export interface SwitchFlag {
  kind: 'switch';
  help: string;
}
/** A flag that may be given several times, each value also split at commas. */
export interface ListFlag {
  kind: 'list';
  placeholder: string;
  help: string;
}
export type FlagSpec = ValueFlag<unknown> | SwitchFlag | ListFlag;
export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<F> = F extends ValueFlag<infer T> ? (F['fallback'] extends undefined ? T | undefined : T) : F extends SwitchFlag ? boolean : F extends ListFlag ? string[] : never;
export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: ValueOf<S[K]> };

// ---- builders ----

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be an integer ≥ ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` and ≤ ${max}`}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be an integer ≥ ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` and ≤ ${max}`}`);

const realNumber = (min: number, max: number) =>
  z
    .string()
    .refine((s) => s.trim() !== '' && Number.isFinite(Number(s)), `must be a number in [${min}, ${max}]`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a number in [${min}, ${max}]`);

const value = <T, F>(placeholder: string, schema: z.ZodType<T, string>, help: string, fallback: F, shown?: string) => ({ kind: 'value' as const, placeholder, schema, fallback, shown, help });

export const flag = {
  /** A whole number from min (and at most max). */
  int<F extends number | undefined = undefined>(help: string, fallback?: F, o: { min?: number; max?: number; placeholder?: string; shown?: string } = {}) {
    return value(o.placeholder ?? 'N', wholeNumber(o.min ?? 1, o.max ?? Number.MAX_SAFE_INTEGER), help, fallback as F, o.shown);
  },
  /** A number in [min, max]. */
  number<F extends number | undefined = undefined>(help: string, fallback?: F, o: { min?: number; max?: number; placeholder?: string } = {}) {
    return value(o.placeholder ?? 'X', realNumber(o.min ?? 0, o.max ?? Number.MAX_VALUE), help, fallback as F);
  },
  /** Any text (a path, a name, an id). */
  text<F extends string | undefined = undefined>(placeholder: string, help: string, fallback?: F, shown?: string) {
    return value(placeholder, z.string().min(1, 'must not be empty'), help, fallback as F, shown);
  },
  /** One of a few words. */
  choice<const C extends readonly [string, ...string[]], F extends C[number] | undefined = undefined>(choices: C, help: string, fallback?: F) {
    const schema = z
      .string()
      .refine((s) => (choices as readonly string[]).includes(s), choices.length === 2 ? `must be ${choices[0]} or ${choices[1]}` : `must be one of ${choices.join(', ')}`)
      .transform((s) => s as C[number]);
    return value(choices.join('|'), schema, help, fallback as F);
  },
  /** Words from a set, comma-separated. */
  words<const C extends readonly [string, ...string[]], F extends C[number][] | undefined = undefined>(choices: C, help: string, fallback?: F, placeholder = 'A,B,…') {
    const schema = z.string().transform((s, ctx) => {
      const ws = s.split(',').map((w) => w.trim()).filter(Boolean);
      const bad = ws.filter((w) => !(choices as readonly string[]).includes(w));
      if (ws.length === 0 || bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${choices.join(', ')}${bad.length ? ` ("${bad[0]}" is not one)` : ''}` });
        return z.NEVER;
      }
      return ws as C[number][];
    });
    return value(placeholder, schema, help, fallback as F);
  },
  /** Whole numbers ≥ 1, comma-separated. */
  ints<F extends number[] | undefined = undefined>(help: string, fallback?: F, placeholder = 'N,N,…') {
    const schema = z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim()))
      .refine((xs) => xs.length > 0 && xs.every((x) => /^\d+$/.test(x) && Number(x) >= 1), 'must be whole numbers ≥ 1, comma-separated')
      .transform((xs) => xs.map(Number));
    return value(placeholder, schema, help, fallback as F);
  },
  /** A flag standing for an environment variable: parsed by the variable's definition, which gives it its default. */
  setting<N extends SettingName>(name: N, placeholder: string, help?: string) {
    const d = SETTINGS[name];
    return { kind: 'value', placeholder, schema: d.schema, fallback: d.fallback, shown: d.shown.replace(/`/g, ''), help: help ?? d.meaning.replace(/`/g, ''), env: name } as ValueFlag<SettingValue<N>> & {
      fallback: (typeof SETTINGS)[N]['fallback'];
    };
  },
  switch(help: string): SwitchFlag {
    return { kind: 'switch', help };
  },
  list(placeholder: string, help: string): ListFlag {
    return { kind: 'list', placeholder, help };
  },
};

/** Flags as given: strings (lists as string arrays, switches as booleans), before their schemas read them. */
export type RawFlags = Record<string, string | boolean | string[] | undefined>;

/** argv split into flags and positionals by the command's flags: an unknown flag or a missing value is a usage error. */
export function readArgv(command: string, argv: string[], specs: FlagSpecs): { raw: RawFlags; positionals: string[] } {
  const options = Object.fromEntries(Object.entries(specs).map(([name, f]) => [name, f.kind === 'switch' ? { type: 'boolean' as const } : f.kind === 'list' ? { type: 'string' as const, multiple: true } : { type: 'string' as const }]));
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { raw: values as RawFlags, positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

/**
 * Flags as given, read by their definitions into typed values with their defaults: a value a flag's schema refuses
 * is a usage error naming the command and the flag (exit 2); a flag standing for a variable takes the variable's
 * value when it is not given. Flags of `raw` that `specs` does not define are left alone (a caller reads its share).
 */
export function readFlags<S extends FlagSpecs>(command: string, raw: RawFlags, specs: S, env: NodeJS.ProcessEnv = process.env): FlagValues<S> {
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(specs)) {
    const given = raw[name];
    if (f.kind === 'switch') values[name] = given === true;
    else if (f.kind === 'list') values[name] = (given === undefined ? [] : Array.isArray(given) ? given : [String(given)]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
    else if (f.env) {
      try {
        values[name] = flagOrSetting(f.env, given === undefined ? undefined : String(given), name, env);
      } catch (err) {
        // The variable's own errors name the variable; the flag's name the flag and the command.
        if (given === undefined) throw err;
        throw new UsageError(`${command}: ${(err as Error).message}`);
      }
    } else if (given === undefined) values[name] = f.fallback;
    else {
      const r = f.schema.safeParse(String(given));
      if (!r.success) throw new UsageError(`${command}: --${name} ${r.error.issues[0]!.message} (got ${String(given)})`);
      values[name] = r.data;
    }
  }
  return values as FlagValues<S>;
}

/** argv read and validated with the command's flags. */
export function parseFlags<S extends FlagSpecs>(command: string, argv: string[], specs: S, env: NodeJS.ProcessEnv = process.env): { values: FlagValues<S>; positionals: string[] } {
  const { raw, positionals } = readArgv(command, argv, specs);
  return { values: readFlags(command, raw, specs, env), positionals };
}

/** The flags for `--help`: one line each, with the value's placeholder, the meaning, the default and the variable. */
export function flagTable(specs: FlagSpecs, indent = '  '): string[] {
  const left = (name: string, f: FlagSpec) => `--${name}${f.kind === 'switch' ? '' : ` ${f.placeholder}`}${f.kind === 'list' ? ' …' : ''}`;
  const width = Math.min(34, Math.max(...Object.entries(specs).map(([n, f]) => left(n, f).length)));
  return Object.entries(specs).map(([name, f]) => {
    const extra: string[] = [];
    if (f.kind === 'value') {
      const d = f.shown ?? (f.fallback === undefined ? undefined : Array.isArray(f.fallback) ? f.fallback.join(',') : String(f.fallback));
      if (d !== undefined && d !== '') extra.push(`default ${d}`);
      if (f.env) extra.push(f.env);
    }
    const l = left(name, f);
    return `${indent}${l.padEnd(width)}  ${f.help}${extra.length ? ` (${extra.join('; ')})` : ''}`;
  });
}
