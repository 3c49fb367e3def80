import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES, envTablesMarkdown } from '../../ops/config/env-vars.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** The source files that could read a variable: the product, its tests' harness, CI and the Python trainer. */
function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (!['node_modules', '__pycache__', '.stack'].includes(e.name)) sources(rel, out);
    } else if (/\.(ts|js|py|cjs|mjs)$/.test(e.name) || rel === join('.ci', 'run')) out.push(rel);
  }
  return out;
}

/** IPT_ names the code reads (a name built from a prefix, like `IPT_KAFKA_${…}`, or a prefix tested with startsWith is left out). */
function namesInCode(): Map<string, string> {
  const found = new Map<string, string>();
  const files = [...['processors', 'connectors', 'ops', 'trainers', 'test', '.ci'].flatMap((d) => sources(d)), 'index.ts', 'vitest.config.ts'];
  for (const f of files) {
    if (f === join('processors', 'runtime', 'settings.ts') || f === join('test', 'unit', 'env-vars.test.ts') || f === join('test', 'unit', 'settings.test.ts')) continue;
    for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/(startsWith\(['"])?\b(IPT_[A-Z0-9_]*[A-Z0-9])\b/g)) if (!m[1] && !found.has(m[2]!)) found.set(m[2]!, f);
  }
  return found;
}

describe('the environment variables table', () => {
  it('docs/operations.md holds exactly what `ipt env --markdown` prints', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    const m = /<!-- env-tables:start[^>]*-->\n([\s\S]*?)<!-- env-tables:end -->/.exec(doc);
    expect(m, 'the env-tables markers in docs/operations.md').not.toBeNull();
    expect(m![1]).toBe(envTablesMarkdown());
  });

  it('names every variable the code reads, and no variable the code does not read', () => {
    const inCode = namesInCode();
    const listed = new Set(ENV_NAMES);
    const missing = [...inCode].filter(([n]) => !listed.has(n)).map(([n, f]) => `${n} (read in ${f})`);
    expect(missing, 'read by the code but not defined in processors/runtime/settings.ts').toEqual([]);
    expect(ENV_NAMES.filter((n) => !inCode.has(n)), 'defined in processors/runtime/settings.ts but read nowhere').toEqual([]);
    expect(new Set(ENV_NAMES).size, 'a variable listed twice').toBe(ENV_NAMES.length);
  });

  it('is the only way the product reads them: no IPT_ variable is taken from the environment past its definition', () => {
    const reads: string[] = [];
    for (const f of [...['processors', 'connectors', 'ops', 'trainers'].flatMap((d) => sources(d)), 'index.ts'].filter((x) => x.endsWith('.ts'))) {
      if (f === join('processors', 'runtime', 'settings.ts')) continue;
      const text = readFileSync(join(ROOT, f), 'utf8');
      // env.IPT_X or env['IPT_X'] read (an assignment, a delete or an object key sets it for a child process).
      for (const m of text.matchAll(/(delete\s+)?\benv(?:\.(IPT_\w+)|\[['"](IPT_\w+)['"]\])(\s*=(?!=))?/g)) if (!m[1] && !m[4]) reads.push(`${f}: ${m[2] ?? m[3]}`);
    }
    expect(reads, 'read with setting() from processors/runtime/settings.ts').toEqual([]);
  });
});
