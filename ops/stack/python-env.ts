import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { StackConfig } from './stack-config.ts';

export const TRAINER_PACKAGE_DIR = resolve('trainers', 'python');

/** The Python of the trainer's virtual environment under the stack directory. */
export function trainerPython(cfg: StackConfig): string {
  return join(cfg.dir, 'venv', 'bin', 'python');
}

/**
 * Creates `.stack/venv` and installs the trainer package (editable, with its test extras: torch, transformers,
 * confluent-kafka, fastavro, pytest, tokenizers) from PyPI; idempotent — it reinstalls only when
 * trainers/python/pyproject.toml changed.
 */
export function installTrainerEnv(cfg: StackConfig, log: (l: string) => void = () => undefined): string {
  const python = trainerPython(cfg);
  const stamp = join(cfg.dir, 'venv', '.ipt-installed');
  const want = createHash('sha256').update(readFileSync(join(TRAINER_PACKAGE_DIR, 'pyproject.toml'))).digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return python;
  const run = (cmd: string, args: string[]) => {
    try {
      execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`installing the trainer environment failed: ${cmd} ${args.join(' ')}: ${e.stderr?.toString().slice(-3000) ?? e.message}`);
    }
  };
  if (!existsSync(python)) {
    log(`trainer: python3 -m venv ${join(cfg.dir, 'venv')}`);
    run(process.env.IPT_PYTHON ?? 'python3', ['-m', 'venv', join(cfg.dir, 'venv')]);
  }
  log('trainer: pip install -e trainers/python[test] (torch, transformers, confluent-kafka, fastavro)');
  run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-e', `${TRAINER_PACKAGE_DIR}[test]`]);
  writeFileSync(stamp, want);
  return python;
}
