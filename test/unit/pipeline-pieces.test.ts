import { describe, expect, it } from 'vitest';
import { chooseConverted, continuesCollection, hasNextText, placement, roundLength, validateRun, type RunConfig } from '../../processors/pipeline/run-config.ts';
import { planRun, openRun } from '../../connectors/ingest/run-plan.ts';
import { validateIngestBatch } from '../../connectors/ingest/http-ingest.ts';
import { RunIdRegistry } from '../../connectors/ingest/http-run-ids.ts';
import { pairQuality } from '../../processors/round-feedback/quality.ts';
import { parseSynthesizerOutput } from '../../processors/round-feedback/parse-output.ts';
import { requestPrompt } from '../../processors/templating/request-prompt.ts';
import { planPrompt, type Collection } from '../../processors/templating/multi-round.ts';
import { wordsEstimate } from '../../processors/templating/length-estimators.ts';
import { evaluationPrompts, responseOf } from '../../processors/evaluation/evaluation-processor.ts';
import { metricRows } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { sqlString } from '../../connectors/clickhouse/query-filters.ts';
import { parseReplayFrom } from '../../ops/jobs/replay.ts';
import { templatedRecords } from '../../processors/round-feedback/templated-records.ts';
import { METRIC_DEFAULTS } from '../../processors/pipeline/records.ts';

const settings = { runId: 'r1', preset: 'none' as const, seed: 5, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words' as const, temperature: 0 };
const texts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, text: `text number ${i}`, source: `f:${i + 1}` }));

describe('run geometry (docs/method.md §3.7)', () => {
  it('places converted texts in rounds of B = ceil(N / M), the last one short', () => {
    const { run, records } = planRun({ ...settings, rounds: 3 }, texts(31));
    expect(run.roundSize).toBe(11);
    expect([0, 1, 2].map((r) => roundLength(run, r))).toEqual([11, 11, 9]);
    expect(records.map((r) => r.round)).toEqual([...Array(11).fill(0), ...Array(11).fill(1), ...Array(9).fill(2)]);
    expect(placement(run, 25)).toEqual({ round: 2, position: 3 });
    expect(continuesCollection(run, { round: 0, position: 0 })).toBe(false);
    expect(continuesCollection(run, { round: 2, position: 8 })).toBe(true);
    // Round-1 collections 9 and 10 have no round-2 text: they are carried to the output.
    expect(hasNextText(run, { round: 1, position: 8 })).toBe(true);
    expect(hasNextText(run, { round: 1, position: 9 })).toBe(false);
    expect(hasNextText(run, { round: 2, position: 0 })).toBe(false);
  });

  it('converts exactly round(fraction · N) texts, the same ones for a seed whatever the input order', () => {
    const ids = texts(1000).map((t) => t.id);
    const a = chooseConverted(ids, 0.2, 9);
    expect(a.filter(Boolean).length).toBe(200);
    const reversed = chooseConverted([...ids].reverse(), 0.2, 9).reverse();
    expect(reversed).toEqual(a);
    expect(chooseConverted(ids, 0.2, 10)).not.toEqual(a);
    const { run, records } = planRun({ ...settings, preset: 'from-scratch' }, texts(50));
    expect(run.rounds).toBe(2);
    expect(records.filter((r) => r.convert).map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(records.filter((r) => !r.convert).every((r) => r.seq === -1)).toBe(true);
  });

  it('validates a run, naming what is wrong', () => {
    const { run } = planRun({ ...settings, rounds: 2 }, texts(4));
    expect(() => validateRun({ ...run, runId: 'bad id' })).toThrow(/run id/);
    expect(() => validateRun({ ...run, maxNewTokens: 5000 })).toThrow(/max-model-len/);
    expect(() => validateRun({ ...run, convertedTexts: null } as RunConfig)).toThrow(/open run/);
    expect(() => validateRun({ ...run, generalWeight: 1 })).toThrow(/general weight/);
    expect(openRun(settings).rounds).toBe(1);
  });
});

describe('HTTP ingest validation', () => {
  const run = openRun({ ...settings, convertFraction: 1 });
  const limits = { maxRecords: 5, maxTextBytes: 20 };
  it('accepts good records and rejects each bad one with its index and reason', () => {
    const r = validateIngestBatch(run, { records: [{ id: 'a', text: 'fine' }, { text: 7 }, { id: 'a', text: 'again' }, { id: 'c', text: 'é'.repeat(11) }, { id: 'with space', text: 'x' }] }, limits);
    if ('error' in r) throw new Error(r.error);
    expect(r.accepted.map((a) => a.id)).toEqual(['a']);
    expect(r.accepted[0]).toMatchObject({ runId: 'r1', convert: true, round: 0, source: 'http' });
    expect(r.rejected.map((x) => [x.index, x.reason.split(' ')[0]])).toEqual([
      [1, '"text"'],
      [2, 'id'],
      [3, '"text"'],
      [4, '"id"'],
    ]);
    expect(r.rejected[2]!.reason).toMatch(/22 bytes; at most 20/);
  });
  it('refuses a malformed or oversized batch as a whole', () => {
    expect(validateIngestBatch(run, { nope: 1 }, limits)).toHaveProperty('error');
    expect(validateIngestBatch(run, { records: [] }, limits)).toHaveProperty('error');
    expect(validateIngestBatch(run, { records: Array(6).fill({ text: 'x' }) }, limits)).toHaveProperty('error');
  });
  it('rejects what the files path rejects: lone surrogates and NUL in a text, ids and sources UTF-8 cannot carry', () => {
    const r = validateIngestBatch(
      run,
      {
        records: [
          { id: 'a', text: 'half \ud800 a pair' },
          { id: 'b', text: 'nul \u0000 here' },
          { id: 'c', text: 'a pair \ud83d\ude00' },
          { id: 'd\udc00', text: 'fine' },
          { id: 'e\u0001', text: 'fine' },
          { id: 'f', text: 'fine', source: 'src \ud800' },
          { id: 'g', text: 'fine', source: 'nul \u0000' },
        ],
      },
      { maxRecords: 10, maxTextBytes: 100 },
    );
    if ('error' in r) throw new Error(r.error);
    expect(r.accepted.map((a) => a.id)).toEqual(['c']);
    expect(r.indices).toEqual([2]);
    expect(r.rejected.map((x) => x.index)).toEqual([0, 1, 3, 4, 5, 6]);
    expect(r.rejected[0]!.reason).toBe('"text" has a lone surrogate (U+D800) at character 5: not encodable as UTF-8');
    expect(r.rejected[1]!.reason).toMatch(/NUL character at character 4/);
    expect(r.rejected[2]!.reason).toMatch(/^"id"/);
    expect(r.rejected[3]!.reason).toMatch(/^"id"/);
    expect(r.rejected[4]!.reason).toMatch(/^"source"/);
    expect(r.rejected[5]!.reason).toMatch(/^"source"/);
  });
  it('rejects ids the run has already taken in, and new ids beyond the room it has left', () => {
    const seen = new RunIdRegistry(3).forRun(run.runId);
    seen.take(['a']);
    const r = validateIngestBatch(run, { records: [{ id: 'a', text: 'again' }, { id: 'b', text: 'new' }, { id: 'c', text: 'new' }, { id: 'd', text: 'one too many' }] }, limits, Date.now(), seen);
    if ('error' in r) throw new Error(r.error);
    expect(r.accepted.map((a) => a.id)).toEqual(['b', 'c']);
    expect(r.indices).toEqual([1, 2]);
    expect(r.rejected).toEqual([
      { index: 0, id: 'a', reason: 'id "a" already ingested into run "r1"' },
      { index: 3, id: 'd', reason: 'run "r1" has taken in 3 ids through this server, the most it remembers per run (IPT_MAX_RUN_IDS): open a new run' },
    ]);
  });
});

describe('stage pieces', () => {
  it('rebuilds exactly the prompt that templating planned', async () => {
    const prev: Collection = [
      { context: 'first text', pairs: [{ question: 'Q1?', answer: 'A1' }], inheritFromPrev: false, followedByNext: true },
      { context: 'second text', pairs: [{ question: 'Q2?', answer: 'A2' }], inheritFromPrev: true, followedByNext: false },
    ];
    const plan = await planPrompt('third text', prev, { maxModelLen: 4096, maxNewTokens: 400, estimate: wordsEstimate });
    expect(plan.fewShot).toBe(true);
    expect(requestPrompt({ text: 'third text', fewShot: true, collection: plan.collection!.map((e, i) => ({ ...e, contextId: `c${i}` })) })).toBe(plan.prompt);
    const tight = await planPrompt('third text', prev, { maxModelLen: 420, maxNewTokens: 400, estimate: wordsEstimate });
    expect(tight.fewShot).toBe(false);
    expect(requestPrompt({ text: 'third text', fewShot: false, collection: [] })).toBe(tight.prompt);
  });

  it('counts words like split(" ") without building the array', () => {
    for (const s of ['', ' ', 'a', 'a b', '  a  b ', 'x'.repeat(10)]) expect(wordsEstimate(s)).toBe(s.split(' ').length * 1.5);
  });

  it('measures kinds, duplicates and grounding', () => {
    const output = '<QUE> Who? <ANS> Ada Lovelace </END>\n\n<QUE> who? <ANS> someone </END>\n\n<QUE> What year?\nOptions:\n- 1815\n- 1900 <ANS> 1815 </END>';
    const counts = { pieces: 0 };
    const pairs = parseSynthesizerOutput(output, counts);
    expect(counts.pieces).toBe(3);
    expect(pairs).toHaveLength(2);
    const q = pairQuality('Ada Lovelace was born in 1815.', pairs);
    expect(q).toMatchObject({ pairs: 2, kindFree: 1, kindMc: 1, grounding: 1 });
    expect(pairQuality('Nothing here.', pairs).grounding).toBe(0);
    expect(pairQuality('text', []).grounding).toBe(0);
  });

  it('templates a collection into records that name every raw text once', () => {
    const coll = [
      { contextId: 'a', context: 'A text.', pairs: [{ question: 'Q?', answer: 'A' }], inheritFromPrev: false, followedByNext: true },
      { contextId: 'b', context: 'B text.', pairs: [{ question: 'R?', answer: 'B' }], inheritFromPrev: true, followedByNext: false },
      { contextId: 'c', context: 'C text.', pairs: [], inheritFromPrev: false, followedByNext: false },
    ];
    const out = templatedRecords('run', 1, coll, 0);
    expect(out.map((o) => o.textIds)).toEqual([['a', 'b'], ['c']]);
    expect(out.map((o) => o.id)).toEqual(['a', 'c']);
    expect(out[1]!.text).toBe('C text.');
    expect(out[0]!.text).toContain('A text.');
    expect(out[0]!.text).toContain('B text.');
  });

  it('builds zero- and few-shot evaluation prompts and reads the response up to </END>', () => {
    const prompts = evaluationPrompts({ id: 'e', runId: 'r', dataset: 'd', seen: true, context: 'C.', instruction: 'Why?', responses: ['x'], examples: [{ context: 'E.', pairs: [{ question: 'Q', answer: 'A' }] }] });
    expect(prompts.map((p) => p.shots)).toEqual([0, 1]);
    expect(prompts[0]!.prompt).toBe('<s> <CON> C. </CON>\n\n<QUE> Why? <ANS>');
    expect(prompts[1]!.prompt).toBe('<s> <CON> E. </CON>\n\n<QUE> Q <ANS> A </END></s><s> <CON> C. </CON>\n\n<QUE> Why? <ANS>');
    expect(responseOf(' Because. </END>\n\n<QUE> more')).toBe('Because.');
    expect(responseOf(' unfinished\n')).toBe('unfinished');
  });

  it('maps metric events to ClickHouse rows with explicit seconds, and escapes SQL strings', () => {
    const base = { ...METRIC_DEFAULTS, id: 'm', runId: 'r', recordId: 'x', time: 1_700_000_000_123 };
    expect(metricRows({ ...base, kind: 'synthesis' })).toMatchObject([{ table: 'synthesis_metrics', row: { time: 1_700_000_000, time_ms: 1_700_000_000_123 } }]);
    expect(metricRows({ ...base, kind: 'evaluation' }).map((r) => r.table)).toEqual(['evaluations']);
    expect(() => metricRows({ ...base, kind: 'other' as never })).toThrow(/unknown kind/);
    // A sampled text: its metric row, then a pair_samples row per pair, each with its own id and the context's start.
    const sample = { context: 'The text.', contextChars: 4000, pairs: [{ question: 'Q1', answer: 'A1', kind: 'free' }, { question: 'Q2', answer: 'A2', kind: 'mc' }] };
    const rows = metricRows({ ...base, kind: 'synthesis', round: 1, sample });
    expect(rows.map((r) => r.table)).toEqual(['synthesis_metrics', 'pair_samples', 'pair_samples']);
    expect(rows[2]!.row).toMatchObject({ id: 'm/1', run_id: 'r', round: 1, record_id: 'x', pair_index: 1, kind: 'mc', question: 'Q2', answer: 'A2', context: 'The text.', context_chars: 4000, time: 1_700_000_000 });
    expect(sqlString("it's \\ fine")).toBe("'it\\'s \\\\ fine'");
  });

  it('parses replay positions', () => {
    expect(parseReplayFrom('earliest')).toBe('earliest');
    expect(parseReplayFrom('42')).toEqual({ offset: 42n });
    expect(parseReplayFrom('2026-11-24T10:00:00Z')).toEqual({ timestamp: Date.parse('2026-11-24T10:00:00Z') });
    expect(() => parseReplayFrom('yesterday')).toThrow(/ISO-8601/);
  });
});

describe('grounding by word search', () => {
  it('agrees with membership in the set of the text’s words, on mixed scripts, digits, astral letters and case', async () => {
    const { occursAsWord, words } = await import('../../processors/round-feedback/quality.ts');
    const texts = ['Ada Lovelace, born 1815; ADA-lovelace!', 'Straße in München (Bayern) – 2024/25', 'Ελληνικά και русский текст, 東京 tokyo', '𝒜lpha 𝒜 beta𝒜 x𝒜y', 'İstanbul İ ı I'];
    const candidates = ['ada', 'lovelace', '1815', '815', 'born', 'straße', 'münchen', 'bayern', '2024', '25', 'ελληνικά', 'русский', '東京', 'tokyo', 'lpha', '𝒜lpha', 'beta', 'x', 'y', 'istanbul', 'i̇stanbul', 'i', 'ı', 'love'];
    for (const text of texts) {
      const set = new Set(words(text));
      const lower = text.toLowerCase();
      for (const w of candidates) for (const cand of words(w)) expect([text, cand, occursAsWord(lower, cand)]).toEqual([text, cand, set.has(cand)]);
    }
  });
});

describe('Python whitespace', () => {
  it('isPySpace holds exactly for the code units of the PY_SPACE class', async () => {
    const { isPySpace, PY_SPACE } = await import('../../processors/round-feedback/python-whitespace.ts');
    const cls = new RegExp(`^[${PY_SPACE}]$`);
    for (let c = 0; c <= 0xffff; c++) expect([c, isPySpace(c)]).toEqual([c, cls.test(String.fromCharCode(c))]);
  });

  it('pyStrip is str.strip(): what the anchored regular expression removes, on strings of spaces and letters', async () => {
    const { pyStrip } = await import('../../processors/round-feedback/parse-output.ts');
    const { PY_SPACE } = await import('../../processors/round-feedback/python-whitespace.ts');
    const strip = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
    const alphabet = [' ', '\t', '\n', '\u3000', '\u00a0', '\u200b', 'a', 'é', '<', '\u001c', '\u0085'];
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let i = 0; i < 5000; i++) {
      const s = Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join('');
      expect([s, pyStrip(s)]).toEqual([s, s.replace(strip, '')]);
    }
  });
});

describe('seeded draws', () => {
  it('hashString continues an earlier hash exactly, so a group is seeded without joining the seed and its text', async () => {
    const { hashString, seededRng } = await import('../../processors/pretrain-text/seeded-random.ts');
    for (const [a, b] of [['7\u0000', 'A text — with ünïcode 𝒜 and 東京.'], ['', ''], ['seed', ''], ['', 'x'.repeat(5000)]] as const) {
      expect(hashString(b, hashString(a))).toBe(hashString(a + b));
      const [x, y] = [seededRng(`${a}${b}`), seededRng(hashString(b, hashString(a)))];
      expect(Array.from({ length: 8 }, () => x.next())).toEqual(Array.from({ length: 8 }, () => y.next()));
    }
  });
});

describe('parsing by index', () => {
  it('gives what the split-based reading of docs/method.md §2 gives, on random outputs of markers, spaces and words', async () => {
    const { parseSynthesizerOutput, pyStrip } = await import('../../processors/round-feedback/parse-output.ts');
    // docs/method.md §2 read literally: split on </END>, drop the last piece, one <ANS>, a <QUE> question, a non-empty answer.
    const reference = (text: string) => {
      const out: { question: string; answer: string }[] = [];
      const seen = new Set<string>();
      let pieces = 0;
      for (const piece of text.split('</END>').slice(0, -1)) {
        const parts = piece.split('<ANS>');
        if (parts.length !== 2) continue;
        const q = pyStrip(parts[0]!);
        const a = pyStrip(parts[1]!);
        if (!q.startsWith('<QUE>') || a === '') continue;
        pieces++;
        const question = pyStrip(q.replaceAll('<QUE>', ''));
        if (seen.has(question.toLowerCase())) continue;
        seen.add(question.toLowerCase());
        out.push({ question, answer: a });
      }
      return { out, pieces };
    };
    const tokens = ['<QUE>', '<ANS>', '</END>', ' ', '\n', 'a', 'B', 'b', '<', 'END>', '<AN'];
    let seed = 11;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: rand(24) }, () => tokens[rand(tokens.length)]).join('');
      const counts = { pieces: 0 };
      const got = parseSynthesizerOutput(text, counts).map((p) => ({ question: p.question, answer: p.answer }));
      expect([text, got, counts.pieces]).toEqual([text, reference(text).out, reference(text).pieces]);
    }
  });
});

describe('text fingerprints', () => {
  it('cover the length and both ends of a text, and the whole of a short one', async () => {
    const { textFingerprint } = await import('../../processors/pretrain-text/seeded-random.ts');
    const long = 'x'.repeat(100) + 'middle' + 'y'.repeat(100);
    expect(textFingerprint(long, 1)).toBe(textFingerprint(long.replace('middle', 'MIDDLE'), 1));
    expect(textFingerprint(long, 1)).not.toBe(textFingerprint(`z${long.slice(1)}`, 1));
    expect(textFingerprint(long, 1)).not.toBe(textFingerprint(`${long.slice(0, -1)}z`, 1));
    expect(textFingerprint(long, 1)).not.toBe(textFingerprint(`${long}y`, 1));
    expect(textFingerprint(long, 1)).not.toBe(textFingerprint(long, 2));
    expect(textFingerprint('short middle text', 1)).not.toBe(textFingerprint('short MIDDLE text', 1));
  });
});
