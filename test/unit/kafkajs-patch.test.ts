import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { kafkajsSendPatched } from '../../processors/runtime/kafkajs-patch.ts';

describe('the kafkajs send patch', () => {
  it('is applied to the installed kafkajs, and written for its exact version', () => {
    expect(kafkajsSendPatched()).toBe(true);
    const installed = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version;
    const patches = readdirSync('patches').filter((f) => f.startsWith('kafkajs+'));
    expect(patches).toEqual([`kafkajs+${installed}.patch`]);
    // package.json pins that version: a range would let an install pick a kafkajs the patch was not written for.
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.dependencies.kafkajs).toBe(installed);
    // The postinstall applies it with patch-package, here and in an app that installs the package.
    expect(pkg.scripts.postinstall).toBe('node ops/install/postinstall.mjs');
    expect(readFileSync('ops/install/postinstall.mjs', 'utf8')).toMatch(/patch-package/);
  });
});
