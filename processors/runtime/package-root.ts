import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The instruct-pt package's root (where its package.json is), found from this module's place, so resources
 * (schemas/, the ClickHouse migrations, the dashboard page, the trainer package, the examples) resolve the same from
 * the TypeScript sources and from the compiled dist/.
 */
function findRoot(start: string): string {
  for (let d = start; ; d = dirname(d)) {
    const manifest = join(d, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'instruct-pt') return d;
    if (dirname(d) === d) throw new Error(`no instruct-pt package.json above ${start}`);
  }
}

export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the package. */
export const packagePath = (...parts: string[]) => join(PACKAGE_ROOT, ...parts);

/** Whether this code runs from the TypeScript sources (through tsx) rather than the compiled dist/. */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * The young generation the CLI's processes run with (docs/operations.md, Heap): a stage's in-flight texts then die
 * young instead of being copied. `npm run ipt` and the Docker image pass the same flag.
 */
export const HEAP_FLAGS = ['--max-semi-space-size=64'];

/**
 * How to start this package's CLI in a child process: node with HEAP_FLAGS, tsx's loader when running from the
 * sources, then any modules to preload (after the loader, so a .ts one loads), then main.
 */
export function cliCommand(preload: string[] = []): [string, string[]] {
  const imports = preload.flatMap((m) => ['--import', m]);
  return FROM_SOURCES
    ? [process.execPath, [...HEAP_FLAGS, '--import', 'tsx', ...imports, packagePath('ops', 'cli', 'main.ts')]]
    : [process.execPath, [...HEAP_FLAGS, ...imports, packagePath('dist', 'ops', 'cli', 'main.js')]];
}
