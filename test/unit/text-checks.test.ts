import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { textProblem } from '../../processors/templating/text-checks.ts';
import { maxTextBytes } from '../../connectors/ingest/max-text-bytes.ts';
import { readTextRecords } from '../../connectors/files/text-records.ts';

async function read(path: string, maxBytes?: number) {
  const out = [];
  for await (const r of readTextRecords(path, maxBytes)) out.push(r);
  return out;
}

describe('the shared text rule', () => {
  it('accepts ordinary text, emoji (paired surrogates) and text at the byte limit', () => {
    expect(textProblem('plain text')).toBeUndefined();
    expect(textProblem('emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢')).toBeUndefined();
    expect(textProblem('é'.repeat(5), 10)).toBeUndefined();
  });

  it('refuses lone surrogates, NUL and texts over the limit, saying where', () => {
    expect(textProblem('ab\uD800c')).toMatch(/lone surrogate \(U\+D800\) at character 2/);
    expect(textProblem('\uDC01 first')).toMatch(/lone surrogate \(U\+DC01\) at character 0/);
    expect(textProblem('x😀\uD83D')).toMatch(/at character 3/);
    expect(textProblem('a\u0000b')).toMatch(/NUL character at character 1/);
    expect(textProblem('é'.repeat(6), 10)).toBe('"text" is 12 bytes; at most 10 (IPT_MAX_TEXT_BYTES)');
  });

  it('reads IPT_MAX_TEXT_BYTES strictly', () => {
    expect(maxTextBytes({})).toBe(1 << 20);
    expect(maxTextBytes({ IPT_MAX_TEXT_BYTES: '4096' })).toBe(4096);
    expect(() => maxTextBytes({ IPT_MAX_TEXT_BYTES: '4k' })).toThrow(/IPT_MAX_TEXT_BYTES=4k/);
  });
});

describe('file readers apply the rule by line and keep every good record', () => {
  it('JSONL: lone surrogates (escaped), NUL, oversize text and invalid UTF-8 are rejected with file and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-text-'));
    const p = join(dir, 'mixed.jsonl');
    writeFileSync(p, Buffer.concat([
      Buffer.from('{"id":"a","text":"good"}\n'),
      Buffer.from('{"id":"b","text":"half \\ud800 pair"}\n'),
      Buffer.from('{"id":"c","text":"nul \\u0000 here"}\n'),
      Buffer.from(`{"id":"d","text":"${'x'.repeat(40)}"}\n`),
      Buffer.from([0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]),
      Buffer.from('{"id":"e","text":"emoji \\ud83d\\ude00 ok"}\n'),
    ]));
    const records = await read(p, 32);
    expect(records.filter((r) => r.ok).map((r) => r.ok && [r.id, r.text])).toEqual([['a', 'good'], ['e', 'emoji 😀 ok']]);
    expect(records.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual([
      `${p}:2: "text" has a lone surrogate (U+D800) at character 5: not encodable as UTF-8`,
      `${p}:3: "text" has a NUL character at character 4`,
      `${p}:4: "text" is 40 bytes; at most 32 (IPT_MAX_TEXT_BYTES)`,
      `${p}:5: not valid UTF-8`,
    ]);
  });

  it('Parquet: the same rule by row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-text-'));
    const p = join(dir, 'rows.parquet');
    writeFileSync(p, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['fine', 'bad\u0000', 'also fine'], type: 'STRING' }] })));
    const records = await read(p);
    expect(records.map((r) => r.ok)).toEqual([true, false, true]);
    expect(records[1]).toEqual({ ok: false, line: 2, reason: `${p}: row 2: "text" has a NUL character at character 3` });
  });
});
