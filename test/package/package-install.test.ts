import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `npm pack`, then an install of the tarball into an empty project (its dependencies from the registry), then the
 * `ipt` command and the library under plain node — the node running this test (CI runs it on Node 22 too): no
 * TypeScript loader, no sources, only what the package ships.
 */
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

describe('the published package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-package-'));
  const app = join(dir, 'app');
  let tarball = '';
  let files: string[] = [];

  beforeAll(() => {
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], process.cwd())) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, packed[0]!.filename);
    files = packed[0]!.files.map((f) => f.path);
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ships compiled JavaScript with declarations and its resources, not the TypeScript sources', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/ops/cli/main.js');
    for (const f of ['schemas/raw-text.avsc', 'connectors/clickhouse/migrations/001_metrics.sql', 'ops/server/dashboard.html', 'examples/sample-corpus.jsonl', 'trainers/python/pyproject.toml', 'patches/kafkajs+2.2.4.patch']) expect(files).toContain(f);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.some((f) => f.includes('__pycache__') || f.startsWith('test/'))).toBe(false);
  });

  it('runs `ipt` under plain node: version, help, a command’s help, a usage error', () => {
    const ipt = join(app, 'node_modules', '.bin', 'ipt');
    const run = (...args: string[]) => spawnSync(process.execPath, [ipt, ...args], { cwd: app, encoding: 'utf8' });
    const version = run('--version');
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
    const help = run('help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/shards/);
    const shards = run('shards', '--help');
    expect(shards.status).toBe(0);
    expect(shards.stdout).toMatch(/usage: ipt shards --run ID --out DIR/);
    const bad = run('shards', '--run', 'r1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--run and --out are required/);
  });

  it('imports the library under plain node, and patched kafkajs where the app installed it', () => {
    const script = "import { parseSynthesizerOutput, f1Score } from 'instruct-pt'; console.log(JSON.stringify([parseSynthesizerOutput('<QUE> Who? <ANS> Ada. </END>').map((p) => p.answer), f1Score('the cat sat', 'a cat sat')]));";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([['Ada.'], 1]);
    const sendMessages = join(app, 'node_modules', 'kafkajs', 'src', 'producer', 'sendMessages.js');
    expect(existsSync(sendMessages)).toBe(true);
    expect(readFileSync(sendMessages, 'utf8')).toContain('Promise.allSettled(requests)');
  });

  it('works without its optional dependency, and says what to install when the embedded synthesizer is asked for', () => {
    // As on a platform where npm could not install it (an optional dependency's failure does not fail the install).
    // Not --omit=optional: that would also leave out the tokenizers' native binary, which npm installs as optional.
    const llamaCpp = join(app, 'node_modules', 'node-llama-cpp');
    expect(existsSync(llamaCpp)).toBe(true);
    rmSync(llamaCpp, { recursive: true, force: true });
    const script = "import { parseSynthesizerOutput, EmbeddedSynthesizer } from 'instruct-pt'; console.log(typeof EmbeddedSynthesizer.load, parseSynthesizerOutput('<QUE> Q? <ANS> A. </END>').length);";
    const lib = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    expect(lib.status, lib.stderr).toBe(0);
    expect(lib.stdout.trim()).toBe('function 1');
    writeFileSync(join(app, 'model.gguf'), 'not a model');
    const r = spawnSync(process.execPath, [join(app, 'node_modules', '.bin', 'ipt'), 'serve-llm', '--model', 'model.gguf'], { cwd: app, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^ipt: the embedded synthesizer needs node-llama-cpp, an optional dependency that is not installed: run `npm install node-llama-cpp`/);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
