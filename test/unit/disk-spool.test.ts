import { readdirSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskSpool, type SpoolRef } from '../../processors/runtime/disk-spool.ts';

const dirs: string[] = [];
const folder = () => {
  const d = mkdtempSync(join(tmpdir(), 'disk-spool-test-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const value = (i: number) => Buffer.from(`value ${i} ${'x'.repeat(i % 97)} ✓`);

describe('DiskSpool', () => {
  it('gives back each value put, in any order, and leaves no file behind, even while open', () => {
    const dir = folder();
    const spool = new DiskSpool({ dir, segmentBytes: 1000 });
    const refs = new Map<number, SpoolRef>();
    for (let i = 0; i < 500; i++) refs.set(i, spool.put(value(i)));
    expect(spool.files).toBeGreaterThan(10);
    // The segment files are unlinked as they are opened: a process killed now leaves only an empty folder.
    const [own] = readdirSync(dir);
    expect(readdirSync(join(dir, own!))).toEqual([]);
    const order = [...refs.keys()].sort((a, b) => ((a * 7919) % 500) - ((b * 7919) % 500));
    for (const i of order) expect(spool.take(refs.get(i)!).equals(value(i))).toBe(true);
    expect(spool.live).toBe(0);
    spool.close();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives a segment back to the disk once every value in it is taken or freed', () => {
    const spool = new DiskSpool({ dir: folder(), segmentBytes: 100 });
    const refs = Array.from({ length: 40 }, (_, i) => spool.put(value(i)));
    const files = spool.files;
    // Taken in the order put (as the hand-over's takes mostly are): the old segments go one by one.
    for (const r of refs.slice(0, 20)) spool.take(r);
    expect(spool.files).toBeLessThan(files);
    for (const r of refs.slice(20)) spool.free(r);
    // Only the segment being written is left, emptied.
    expect(spool.files).toBe(1);
    expect(spool.bytes).toBe(0);
    const again = spool.put(value(3));
    expect(again.position).toBe(0);
    expect(spool.take(again).equals(value(3))).toBe(true);
    spool.close();
  });

  it('refuses a ref taken twice, also beside live values in its segment, and a put after close', () => {
    const spool = new DiskSpool({ dir: folder(), segmentBytes: 1 << 20 });
    const a = spool.put(value(1));
    const b = spool.put(value(2));
    spool.take(a);
    expect(() => spool.take(a)).toThrow(/no value at segment 0, byte 0 \(taken twice/);
    spool.free(a); // a no-op: b stays readable
    expect(spool.take(b).equals(value(2))).toBe(true);
    spool.close();
    expect(() => spool.put(value(3))).toThrow(/closed/);
  });
});
