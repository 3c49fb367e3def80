import { setting } from '../../processors/runtime/settings.ts';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StackConfig } from './stack-config.ts';
import { packagePath } from '../../processors/runtime/package-root.ts';

export const TRAINER_PACKAGE_DIR = packagePath('trainers', 'python');

/**
 * Packages the resolver asks for that the trainer never loads: triton is torch.compile's GPU code generator (about
 * 1 GB installed), and the trainer does not compile. torch imports without it.
 */
const SKIPPED = new Set(['triton']);

/** The Python of the trainer's virtual environment under the stack directory. */
export function trainerPython(cfg: StackConfig): string {
  return join(cfg.dir, 'venv', 'bin', 'python');
}

/** One package of pip's installation report (`pip install --dry-run --report`). */
export interface ResolvedPackage {
  name: string;
  version: string;
  /** The local project itself (installed editable, last). */
  direct: boolean;
}

/** The packages of a pip installation report (JSON, format version 1). */
export function parseInstallReport(json: string): ResolvedPackage[] {
  const report = JSON.parse(json) as { version?: string; install?: { is_direct?: boolean; metadata?: { name?: string; version?: string } }[] };
  if (report.version !== '1' || !Array.isArray(report.install)) throw new Error(`pip's installation report has an unknown form (version ${String(report.version)})`);
  return report.install.map((p, i) => {
    const name = p.metadata?.name;
    const version = p.metadata?.version;
    if (!name || !version) throw new Error(`pip's installation report: entry ${i} has no name or version`);
    return { name, version, direct: p.is_direct === true };
  });
}

/**
 * The install steps for resolved packages, each a list of `name==version` for one `pip install --no-deps`: the
 * CUDA libraries and torch (the large wheels) one per step, so that at most one of their wheels is on disk beside
 * what is installed; everything else in one step. Skipped packages are left out.
 */
export function installSteps(packages: ResolvedPackage[]): string[][] {
  const large = (name: string) => /^(torch|nvidia-)/i.test(name);
  const wanted = packages.filter((p) => !p.direct && !SKIPPED.has(p.name.toLowerCase()));
  const steps = wanted.filter((p) => large(p.name)).map((p) => [`${p.name}==${p.version}`]);
  const rest = wanted.filter((p) => !large(p.name)).map((p) => `${p.name}==${p.version}`);
  return rest.length > 0 ? [...steps, rest] : steps;
}

function freeGiB(dir: string): string {
  const s = statfsSync(dir);
  return ((s.bavail * s.bsize) / 2 ** 30).toFixed(1);
}

/**
 * Creates `.stack/venv` and installs the trainer package (editable, with its test extras: torch, transformers,
 * confluent-kafka, fastavro, pytest, tokenizers) from PyPI; idempotent — it reinstalls only when
 * trainers/python/pyproject.toml changed.
 *
 * torch's Linux wheels bring about 3 GB of CUDA libraries. A plain `pip install` holds every downloaded wheel (and a
 * cached copy) beside the installed files, about twice the installed size at its peak. Here pip first resolves
 * without downloading (`--dry-run --report`), then installs the resolved versions without cache, the large wheels
 * one at a time: the peak is the installed size plus one wheel.
 */
export function installTrainerEnv(cfg: StackConfig, log: (l: string) => void = () => undefined): string {
  const python = trainerPython(cfg);
  const stamp = join(cfg.dir, 'venv', '.ipt-installed');
  const want = createHash('sha256').update(readFileSync(join(TRAINER_PACKAGE_DIR, 'pyproject.toml'))).digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return python;
  const run = (cmd: string, args: string[]): void => {
    try {
      execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(
        `installing the trainer environment failed (${freeGiB(cfg.dir)} GiB free on ${cfg.dir}): ${cmd} ${args.join(' ')}: ${e.stderr?.toString().slice(-3000) ?? e.message}`,
      );
    }
  };
  if (!existsSync(python)) {
    log(`trainer: python3 -m venv ${join(cfg.dir, 'venv')}`);
    run(setting('IPT_PYTHON'), ['-m', 'venv', join(cfg.dir, 'venv')]);
  }
  const pipInstall = (...args: string[]) => run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-cache-dir', ...args]);
  const project = `${TRAINER_PACKAGE_DIR}[test]`;
  log(`trainer: resolving trainers/python[test] (torch, transformers, confluent-kafka, fastavro); ${freeGiB(cfg.dir)} GiB free`);
  const scratch = mkdtempSync(join(tmpdir(), 'ipt-pip-'));
  let packages: ResolvedPackage[];
  try {
    const reportFile = join(scratch, 'report.json');
    pipInstall('--dry-run', '--ignore-installed', '--report', reportFile, '-e', project);
    packages = parseInstallReport(readFileSync(reportFile, 'utf8'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const steps = installSteps(packages);
  for (const step of steps) {
    log(`trainer: pip install --no-deps ${step.length === 1 ? step[0] : `${step.length} packages`}`);
    pipInstall('--no-deps', ...step);
  }
  pipInstall('--no-deps', '-e', project);
  run(python, ['-c', 'import torch, transformers, confluent_kafka, fastavro, instruct_pt_trainer']);
  log(`trainer: installed ${steps.flat().length} packages and the trainer (left out: ${[...SKIPPED].join(', ')}); ${freeGiB(cfg.dir)} GiB free`);
  writeFileSync(stamp, want);
  return python;
}
