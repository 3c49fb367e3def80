import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { exampleSegments, keepPerDataset, packSequences, type TuningExample, type TuningSequence } from '../../processors/synthesizer-data/tuning-sequences.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import { formatExample } from '../../processors/templating/synthesizer-format.ts';
import { parseFieldMap, readTuningExamples, type BadRecord } from '../../connectors/files/tuning-records.ts';
import { buildSynthesizerData } from '../../ops/jobs/synthesizer-data.ts';

const ex = (dataset: string, context: string, n: number): TuningExample => ({ dataset, context, pairs: Array.from({ length: n }, (_, i) => ({ question: `q${i} of ${context}?`, answer: `a${i}` })) });
const textOf = (s: TuningSequence) => s.segments.map((g) => g.text).join('');
const tmp = () => mkdtempSync(join(tmpdir(), 'ipt-tuning-'));

describe('tuning sequences (docs/method.md §6)', () => {
  it('splits an example into its untrained synthesizer input and its trained pairs block with the end of sequence', () => {
    const e = ex('d', 'The sky is blue.', 2);
    expect(exampleSegments(e)).toEqual([
      { text: '<s> <CON> The sky is blue. </CON>\n\n', train: false },
      { text: '<QUE> q0 of The sky is blue.? <ANS> a0 </END>\n\n<QUE> q1 of The sky is blue.? <ANS> a1 </END></s>', train: true },
    ]);
    expect(exampleSegments(e).map((s) => s.text).join('')).toBe(formatExample(e.context, e.pairs));
  });

  it('keeps at most K per dataset, the most pairs first, ties in input order, and counts the rest', () => {
    const list = [ex('a', 'c1', 1), ex('b', 'x', 2), ex('a', 'c2', 3), ex('a', 'c3', 1), ex('a', 'c4', 3), ex('a', 'c5', 2)];
    const { kept, dropped } = keepPerDataset(list, 4);
    expect([...kept.keys()]).toEqual(['a', 'b']);
    expect(kept.get('a')!.map((e) => e.context)).toEqual(['c2', 'c4', 'c5', 'c1']);
    expect(dropped.get('a')).toBe(1);
    expect(kept.get('b')!.map((e) => e.context)).toEqual(['x']);
    expect(dropped.get('b')).toBe(0);
  });

  it('packs greedily while the whole sequence’s estimate fits; the example that would not starts the next; one too long alone stands alone', async () => {
    const list = [ex('d', 'one', 1), ex('d', 'two', 1), ex('d', 'three', 1), ex('d', 'w '.repeat(60), 1), ex('d', 'four', 1)];
    const single = wordsEstimate(textOf({ dataset: 'd', segments: exampleSegments(list[0]!) }));
    const pair = wordsEstimate(textOf({ dataset: 'd', segments: [...exampleSegments(list[0]!), ...exampleSegments(list[1]!)] }));
    // Room for two short examples, not three; the long one exceeds the limit on its own.
    const limit = pair + 1;
    expect(single * 3).toBeGreaterThan(limit);
    const seqs = await packSequences('d', list, limit, wordsEstimate);
    expect(seqs.map((s) => s.segments.length / 2)).toEqual([2, 1, 1, 1]);
    expect(seqs.map((s) => s.dataset)).toEqual(['d', 'd', 'd', 'd']);
    expect(wordsEstimate(textOf(seqs[2]!))).toBeGreaterThan(limit);
    for (const s of [seqs[0]!, seqs[1]!, seqs[3]!]) expect(wordsEstimate(textOf(s))).toBeLessThanOrEqual(limit);
    // Exactly at the limit still fits.
    expect((await packSequences('d', list.slice(0, 2), pair, wordsEstimate)).length).toBe(1);
    expect(seqs[0]!.segments.map((s) => s.train)).toEqual([false, true, false, true]);
  });
});

describe('reading tuning datasets', () => {
  it('reads this project’s records, SQuAD records grouped by context, and mapped layouts; names bad records by file and line', async () => {
    const dir = tmp();
    const native = join(dir, 'tasks.jsonl');
    writeFileSync(native, [
      JSON.stringify({ dataset: 'nli', context: 'ctx A', pairs: [{ question: 'Q1', answer: 'A1' }] }),
      '{not json',
      JSON.stringify({ dataset: 'nli', context: 'ctx B', pairs: [] }),
      JSON.stringify({ dataset: 'nli', context: 'ctx C', pairs: [{ question: 'Q', answer: 'A' }, { question: 'Q2', answer: 'A2' }] }),
      '',
    ].join('\n'));
    const squad = join(dir, 'squad_v2.jsonl');
    writeFileSync(squad, [
      JSON.stringify({ title: 't', context: 'Paris is in France.', question: 'Where is Paris?', answers: { text: ['France'], answer_start: [12] } }),
      JSON.stringify({ title: 't', context: 'Rome is in Italy.', question: 'Where is Rome?', answers: { text: ['Italy'], answer_start: [11] } }),
      JSON.stringify({ title: 't', context: 'Paris is in France.', question: 'What is in France?', answers: { text: ['Paris'], answer_start: [0] } }),
      JSON.stringify({ title: 't', context: 'x', question: 'unanswerable?', answers: { text: [], answer_start: [] } }),
    ].join('\n'));
    const bad: BadRecord[] = [];
    const examples = await readTuningExamples([native, squad], undefined, (b) => bad.push(b));
    expect(examples.map((e) => [e.dataset, e.context, e.pairs.length])).toEqual([
      ['nli', 'ctx A', 1],
      ['nli', 'ctx C', 2],
      ['squad_v2', 'Paris is in France.', 2],
      ['squad_v2', 'Rome is in Italy.', 1],
    ]);
    expect(examples[2]!.pairs).toEqual([{ question: 'Where is Paris?', answer: 'France' }, { question: 'What is in France?', answer: 'Paris' }]);
    expect(bad.map((b) => b.where)).toEqual([`${native}:2`, `${native}:3`, `${squad}:4`]);
    expect(bad[0]!.reason).toMatch(/not JSON/);
    expect(bad[1]!.reason).toBe('"pairs" is not a non-empty list');
    expect(bad[2]!.reason).toBe('"answers.text" has no answer');

    const flat = join(dir, 'flat.parquet');
    writeFileSync(flat, Buffer.from(parquetWriteBuffer({ columnData: [
      { name: 'src', data: ['boolq', 'boolq', 'boolq'], type: 'STRING' },
      { name: 'passage', data: ['p1', 'p1', 'p2'], type: 'STRING' },
      { name: 'q', data: ['is it?', 'is it not?', 'maybe?'], type: 'STRING' },
      { name: 'a', data: ['yes', 'no', null], type: 'STRING', nullable: true },
    ] })));
    const mappedBad: BadRecord[] = [];
    const mapped = await readTuningExamples([flat], parseFieldMap('dataset=src,context=passage,question=q,answer=a'), (b) => mappedBad.push(b));
    expect(mapped).toEqual([{ dataset: 'boolq', context: 'p1', pairs: [{ question: 'is it?', answer: 'yes' }, { question: 'is it not?', answer: 'no' }] }]);
    expect(mappedBad).toEqual([{ where: `${flat}: row 3`, reason: '"a" is neither a string nor a list of strings' }]);
    expect(() => parseFieldMap('context=a,question=b')).toThrow('answer=FIELD is missing');
  });

  it('writes one sequence per line and a summary; the command exits 1 on bad records unless allowed', async () => {
    const dir = tmp();
    const input = join(dir, 'in.jsonl');
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify(ex(i % 3 === 0 ? 'math' : 'qa', `context number ${i}`, 1 + (i % 4))));
    writeFileSync(input, [...lines, '"just a string"'].join('\n'));
    const output = join(dir, 'out.jsonl');
    const s = await buildSynthesizerData({ inputs: [input], output, maxPerDataset: 15, maxLen: 120, estimate: wordsEstimate });
    expect(s).toMatchObject({ examples: 30, kept: 25, dropped: 5, badRecords: 1 });
    expect(s.datasets.map((d) => [d.dataset, d.examples, d.kept, d.dropped])).toEqual([['math', 10, 10, 0], ['qa', 20, 15, 5]]);
    const written = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TuningSequence);
    expect(written).toHaveLength(s.sequences);
    expect(written.reduce((n, q) => n + q.segments.length / 2, 0)).toBe(25);
    expect(written.flatMap((q) => q.segments.filter((g) => g.train).map((g) => (g.text.match(/<QUE>/g) ?? []).length)).reduce((a, b) => a + b, 0)).toBe(s.pairs);
    for (const q of written) expect(wordsEstimate(textOf(q)) <= 120 || q.segments.length === 2).toBe(true);

    const run = (extra: string[]) => spawnSync(process.execPath, ['ops/cli/bin.js', 'synthesizer', 'data', '--input', input, '--output', join(dir, 'cli.jsonl'), '--max-len', '120', '--json', ...extra], { encoding: 'utf8' });
    const strict = run([]);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain(`${input}:31: not a JSON object`);
    expect(JSON.parse(strict.stdout.trim())).toMatchObject({ examples: 30, kept: 30, badRecords: 1 });
    expect(run(['--allow-rejects']).status).toBe(0);
    expect(run(['--length-estimate', 'tokens']).stderr).toContain('--length-estimate tokens needs --tokenizer');
  }, 60_000);
});
