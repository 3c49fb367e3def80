import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { FROM_SOURCES, PACKAGE_ROOT } from '../../processors/runtime/package-root.ts';

// The repository's bench-results/ from the sources; the working directory's from an installed package.
const REPO = FROM_SOURCES ? PACKAGE_ROOT : process.cwd();

/** The heap and collector flags Node runs with, from its command line and NODE_OPTIONS. */
function heapFlags(): string[] {
  const options = (process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  return [...process.execArgv, ...options].filter((a) => /space[-_]size|heap|gc/i.test(a));
}

/**
 * Writes a benchmark's result to bench-results/<name>-<UTC time>.json in the repository, with when, the command and
 * the machine beside it (as `ipt chaos --save` does; with Node's version and its heap flags), so results of several
 * sessions sit side by side and a figure quoted elsewhere can name its file. Returns the path, relative to the
 * repository.
 */
export function saveBenchResult(name: string, argv: string[], result: object, loadBefore: number[]): string {
  const recordedAt = new Date().toISOString();
  const path = join(REPO, 'bench-results', `${name}-${recordedAt.replace(/[-:]/g, '').replace(/\..*/, '')}.json`);
  mkdirSync(dirname(path), { recursive: true });
  // The load averages before and after: on a shared machine they say whether the figures were CPU-starved.
  const load = (l: number[]) => l.map((x) => Math.round(x * 100) / 100);
  const machine = { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, nodeFlags: heapFlags(), loadBefore: load(loadBefore), loadAfter: load(loadavg()) };
  writeFileSync(path, JSON.stringify({ recordedAt, command: ['ipt', 'bench', ...argv].join(' '), machine, ...result }, null, 2) + '\n');
  return relative(REPO, path);
}
