import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { cliCommand, HEAP_FLAGS } from '../../processors/runtime/package-root.ts';

const file = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('the heap flags (docs/operations.md, Heap)', () => {
  it('are passed by npm run ipt, the Docker image and every CLI process ipt starts itself, the same everywhere', () => {
    expect(HEAP_FLAGS).toEqual(['--max-semi-space-size=64']);
    const script = (JSON.parse(file('package.json')) as { scripts: Record<string, string> }).scripts.ipt!;
    expect(script).toBe(`exec node ${HEAP_FLAGS.join(' ')} --import tsx ops/cli/main.ts`);
    expect(file('Dockerfile')).toContain(`ENTRYPOINT ["node", ${HEAP_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "dist/ops/cli/main.js"]`);
    const [exe, args] = cliCommand(['./probe.ts']);
    expect(exe).toBe(process.execPath);
    expect(args.slice(0, HEAP_FLAGS.length)).toEqual(HEAP_FLAGS);
    expect(args.slice(-1)[0]).toMatch(/ops\/cli\/main\.ts$/);
  });
});
