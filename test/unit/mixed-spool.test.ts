import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMixedFile } from '../../connectors/files/mixed-file-sink.ts';
import { MixedSpool } from '../../connectors/files/mixed-spool.ts';
import type { MixedTextRecord } from '../../processors/pipeline/records.ts';

const record = (i: number, mixIndex = i, text = `text ${i} ${'w'.repeat(i % 17)}`): MixedTextRecord => ({
  id: i % 5 === 4 ? `general/${i}/${mixIndex}` : `t${i}`,
  runId: 'spool-run',
  source: i % 5 === 4 ? 'general' : i % 3 === 0 ? 'raw' : 'augmented',
  sourceId: `s${i}`,
  text,
  tokens: 3 + (i % 11),
  mixIndex,
  round: 0,
  textIds: [],
  pairs: 0,
});

/** The file as writeMixedFile writes it from a Map by id (the later record of an id replacing the earlier), and as the spool does. */
async function both(ext: string, arrivals: MixedTextRecord[]) {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-spool-'));
  const byId = new Map<string, MixedTextRecord>();
  for (const r of arrivals) byId.set(r.id, r);
  const want = join(dir, `want${ext}`);
  const wantCount = await writeMixedFile(want, byId.values());
  const got = join(dir, `got${ext}`);
  const spool = new MixedSpool(got);
  const entryOf = new Map<string, number>();
  for (const r of arrivals) {
    const e = await spool.add(r);
    if (entryOf.has(r.id)) spool.replaced(entryOf.get(r.id)!);
    entryOf.set(r.id, e);
  }
  const gotCount = await spool.finish();
  return { want: readFileSync(want), got: readFileSync(got), wantCount, gotCount, left: readdirSync(dir) };
}

describe('the mixed stream spooled to disk and written in mix order', () => {
  const inOrder = Array.from({ length: 1500 }, (_, i) => record(i));
  // A restarted stage: records written again (one under a new mix index, one under the same), and arrivals out of order.
  const restarted = [...inOrder.slice(0, 700), record(650, 1500), record(652), ...inOrder.slice(700).reverse(), record(3, 1501, 'changed')];

  it.each(['.jsonl', '.parquet'])('%s: the same bytes as writeMixedFile, in order and after a restart', async (ext) => {
    for (const arrivals of [inOrder, restarted]) {
      const r = await both(ext, arrivals);
      expect(r.gotCount).toBe(r.wantCount);
      expect(r.got.equals(r.want)).toBe(true);
      // The spool file is gone.
      expect(r.left.sort()).toEqual([`got${ext}`, `want${ext}`]);
    }
  });

  it('a Parquet file past the second row group (1,000 then 100,000 rows) is byte for byte the same', async () => {
    const many = Array.from({ length: 101_200 }, (_, i) => ({ ...record(i), text: `t${i}` }));
    const r = await both('.parquet', many);
    expect(r.gotCount).toBe(101_200);
    expect(r.got.equals(r.want)).toBe(true);
  });

  it('a run that fails leaves no file behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-spool-'));
    const spool = new MixedSpool(join(dir, 'out.jsonl'));
    await spool.add(record(1));
    await spool.discard();
    expect(readdirSync(dir)).toEqual([]);
  });
});
