import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('text records from stdin', () => {
  it('reads JSONL from standard input (`-`), ids defaulting to stdin:<line>, bad lines reported with their number', () => {
    const script = `import { readTextRecords } from './connectors/files/text-records.ts';
const out = [];
for await (const r of readTextRecords('-')) out.push(r);
console.log(JSON.stringify(out));`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      input: '{"text":"first"}\n{"id":"b","text":"second"}\nnot json\n\n{"text":3}\n',
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    const records = JSON.parse(res.stdout) as { ok: boolean; id?: string; line: number; reason?: string }[];
    expect(records.map((r) => (r.ok ? `${r.id}@${r.line}` : `bad@${r.line}`))).toEqual(['stdin:1@1', 'b@2', 'bad@3', 'bad@5']);
    expect(records[2]!.reason).toMatch(/^-:3: not JSON/);
  });
});
