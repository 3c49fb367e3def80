import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRun, type InputText, type RunSettings } from '../../connectors/ingest/run-plan.ts';
import { oversizedTexts } from '../../connectors/ingest/message-limits.ts';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { TextFilePlan } from '../../connectors/files/text-file-plan.ts';
import { Bits, FingerprintTable, NumberColumn } from '../../connectors/files/compact-ids.ts';
import type { Reject } from '../../connectors/files/text-file-scan.ts';

const settings: RunSettings = { runId: 'plan-run', preset: 'none', seed: 3, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0 };
const NOW = 1_700_000_000_000;

/** `pipeline run`'s earlier reading, in memory: every accepted text, reused ids rejected naming the first line, then the topic's limit. */
async function listedPlan(path: string, s: RunSettings, limit?: number) {
  const texts: InputText[] = [];
  const lines: number[] = [];
  const rejects: Reject[] = [];
  const seen = new Map<string, number>();
  for await (const r of readTextRecords(path)) {
    if (!r.ok) rejects.push({ line: r.line, reason: r.reason });
    else if (seen.has(r.id)) rejects.push({ line: r.line, reason: `${path}:${r.line}: id "${r.id}" already used on line ${seen.get(r.id)}` });
    else {
      seen.set(r.id, r.line);
      texts.push({ id: r.id, text: r.text, source: `${path}:${r.line}` });
      lines.push(r.line);
    }
  }
  const over = oversizedTexts(texts, s.runId, limit);
  const drop = new Set(over.map((o) => o.index));
  for (const o of over) rejects.push({ line: lines[o.index]!, reason: `${texts[o.index]!.source}: ${o.reason}` });
  return { ...planRun(s, texts.filter((_, i) => !drop.has(i)), NOW), rejects: rejects.sort((a, b) => a.line - b.line) };
}

async function streamedPlan(path: string, s: RunSettings, o: { limit?: number; weak?: boolean } = {}) {
  const rejects: Reject[] = [];
  const plan = await TextFilePlan.create(path, s, { limit: o.limit, now: NOW, weakFingerprints: o.weak, onReject: (r) => rejects.push(r) });
  const records = [];
  for await (const b of plan.batches()) records.push(...b);
  return { plan, run: plan.run, records, rejects: rejects.sort((a, b) => a.line - b.line) };
}

/** A corpus with bad lines, reused ids (a reused id of a reused id, too) and one text far longer than the others. */
function corpus(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-plan-'));
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 97 === 5) lines.push('{not json');
    else if (i % 89 === 7) lines.push(JSON.stringify({ id: `t${i - 3}`, text: `again ${i}` }));
    else if (i % 131 === 9) lines.push(JSON.stringify({ id: `t${i}`, text: '' }));
    else if (i === 40) lines.push(JSON.stringify({ id: 'big', text: 'x'.repeat(3000) }));
    else lines.push(JSON.stringify({ id: `t${i}`, text: `text ${i} ${'w '.repeat(i % 13)}` }));
  }
  lines.splice(200, 0, JSON.stringify({ id: 't8', text: 'third use of t8' }));
  const path = join(dir, 'corpus.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('a run planned from a file without holding its texts', () => {
  const path = corpus(600);
  const cases: [string, RunSettings][] = [
    ['one round, all converted', settings],
    ['3 rounds', { ...settings, rounds: 3 }],
    ['from-scratch: a fifth converted in 2 rounds', { ...settings, preset: 'from-scratch' }],
    ['half converted, another seed', { ...settings, convertFraction: 0.5, seed: 11, rounds: 2 }],
    ['none converted', { ...settings, convertFraction: 0 }],
  ];
  it.each(cases)('%s: the same run, records (in order) and rejects as planning the texts in memory', async (_, s) => {
    const want = await listedPlan(path, s);
    for (const weak of [false, true]) {
      const got = await streamedPlan(path, s, { weak });
      expect(got.run).toEqual(want.run);
      expect(got.records).toEqual(want.records);
      expect(got.rejects).toEqual(want.rejects);
      expect(got.plan.ingested).toBe(want.records.length);
      expect(got.plan.converted).toBe(want.records.filter((r) => r.convert).length);
      // The index: every text by its slot, and no other id.
      for (const r of want.records) {
        const slot = got.plan.slotOf(r.id);
        expect(slot, r.id).toBeGreaterThanOrEqual(0);
        expect(got.plan.has(slot)).toBe(true);
        expect(got.plan.isConverted(slot)).toBe(r.convert);
      }
      expect(got.plan.slotOf('no-such-id')).toBe(-1);
    }
  });

  it('rejects texts over the raw topic limit by line, as the check over texts in memory does', async () => {
    const want = await listedPlan(path, settings, 2500);
    const got = await streamedPlan(path, settings, { limit: 2500 });
    expect(want.rejects.some((r) => r.reason.includes('max.message.bytes'))).toBe(true);
    expect(got.rejects).toEqual(want.rejects);
    expect(got.records).toEqual(want.records);
    expect(got.plan.slotOf('big')).toBe(-1);
  });

  it('reads stdin from its copy under the name "-", as the reader of stdin names its lines and ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipt-plan-'));
    const copy = join(dir, 'stdin.jsonl');
    writeFileSync(copy, ['{"text":"one"}', 'nope', '{"text":"three"}'].join('\n') + '\n');
    const rejects: Reject[] = [];
    const plan = await TextFilePlan.create('-', settings, { from: copy, now: NOW, onReject: (r) => rejects.push(r) });
    const records = [];
    for await (const b of plan.batches()) records.push(...b);
    expect(records.map((r) => [r.id, r.source, r.text])).toEqual([
      ['stdin:1', '-:1', 'one'],
      ['stdin:3', '-:3', 'three'],
    ]);
    expect(rejects.map((r) => r.line)).toEqual([2]);
    expect(rejects[0]!.reason.startsWith('-:2: not JSON')).toBe(true);
  });

  it('names texts by slot, reading their ids back', async () => {
    const got = await streamedPlan(path, settings);
    const ids = ['t0', 't300', 't599'];
    expect(await got.plan.namesOf(ids.map((id) => got.plan.slotOf(id)))).toEqual(ids);
  });
});

describe('compact structures', () => {
  it('a fingerprint table finds every id it holds, and grows', () => {
    const t = new FingerprintTable(4);
    for (let i = 0; i < 50_000; i++) expect(t.insert(`id-${i}`, i)).toBe(-1);
    for (let i = 0; i < 50_000; i += 7) expect(t.find(`id-${i}`)).toBe(i);
    expect(t.insert('id-123', 999)).toBe(123);
    expect(t.find('nope')).toBe(-1);
    expect(t.bytes / 50_000).toBeLessThan(33);
  });

  it('bits and number columns grow as set', () => {
    const b = new Bits();
    expect(b.set(100_000)).toBe(true);
    expect(b.set(100_000)).toBe(false);
    expect(b.get(100_000)).toBe(true);
    expect(b.get(99_999)).toBe(false);
    const c = new NumberColumn((n) => new Int32Array(n));
    for (let i = 0; i < 1000; i++) c.push(i * 2);
    c.put(5000, 7);
    expect([c.at(999), c.at(5000), c.at(4000), c.length]).toEqual([1998, 7, 0, 5001]);
  });
});
