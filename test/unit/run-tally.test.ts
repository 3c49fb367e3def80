import { describe, expect, it } from 'vitest';
import { RunTally, type DeadLetter, type DomainOutput, type RunTexts } from '../../ops/jobs/run-tally.ts';
import { Bits } from '../../connectors/files/compact-ids.ts';
import { METRIC_DEFAULTS, type MetricEventRecord, type MixedTextRecord } from '../../processors/pipeline/records.ts';

const RUN = 'tally-run';

/** The monitor's counts as its maps by id give them (what `pipeline run` summarised before it counted by slot). */
class ByIdModel {
  outputs = new Map<string, DomainOutput>();
  convertedIds = new Set<string>();
  rawIds = new Set<string>();
  deadLetters = new Map<string, DeadLetter>();
  mixed = new Map<string, MixedTextRecord>();
  metrics = new Map<string, MetricEventRecord>();
  output(o: DomainOutput) {
    if (this.outputs.has(o.id)) return;
    this.outputs.set(o.id, o);
    for (const id of o.textIds) (o.converted ? this.convertedIds : this.rawIds).add(id);
  }
  mix(x: MixedTextRecord) {
    this.mixed.set(x.id, x);
    if (x.source !== 'general') this.output({ id: x.id, converted: x.source === 'augmented', textIds: x.textIds, pairs: x.pairs, empty: false });
  }
  dead(id: string, stage: string, reason: string, emitted: boolean) {
    const withOutputs = emitted && this.deadLetters.get(id)?.withOutputs !== false;
    this.deadLetters.set(id, { id, stage, reason, withOutputs });
  }
  counts(expected: string[], converted: string[]) {
    const mixed = [...this.mixed.values()];
    const tokens = (src: string[]) => mixed.filter((m) => src.includes(m.source)).reduce((s, m) => s + m.tokens, 0);
    const conv = [...this.outputs.values()].filter((a) => a.converted);
    return {
      accounted: expected.filter((id) => this.convertedIds.has(id) || this.rawIds.has(id) || this.deadLetters.has(id)).length,
      augmented: expected.filter((id) => this.convertedIds.has(id)).length,
      raw: expected.filter((id) => this.rawIds.has(id)).length,
      deadLettered: [...this.deadLetters.values()].filter((d) => expected.includes(d.id)).length,
      namedDeadLetters: [...this.deadLetters.values()].filter((d) => expected.includes(d.id)).slice(0, 20),
      settled: converted.filter((id) => this.metrics.has(`synthesis/${RUN}/${id}`) || this.deadLetters.get(id)?.withOutputs === false).length,
      domainTexts: [...this.outputs.values()].filter((o) => !o.empty).length,
      mixedDomain: mixed.filter((x) => x.source !== 'general').length,
      outputTexts: conv.length,
      pairs: conv.reduce((s, a) => s + a.pairs, 0),
      mix: {
        records: mixed.length,
        augmented: mixed.filter((m) => m.source === 'augmented').length,
        raw: mixed.filter((m) => m.source === 'raw').length,
        general: mixed.filter((m) => m.source === 'general').length,
        domainTokens: tokens(['augmented', 'raw']),
        generalTokens: tokens(['general']),
      },
      synthesisEvents: [...this.metrics.values()].filter((m) => m.kind === 'synthesis').length,
      evaluationEvents: [...this.metrics.values()].filter((m) => m.kind === 'evaluation').length,
    };
  }
}

function textsOf(ids: string[], converted: Set<string>): RunTexts {
  const slots = new Map(ids.map((id, i) => [id, i]));
  const convert = new Bits();
  ids.forEach((id, i) => converted.has(id) && convert.set(i));
  return { size: ids.length, slotOf: (id) => slots.get(id) ?? -1, has: () => true, isConverted: (s) => convert.get(s), namesOf: async (s) => s.map((i) => ids[i]!) };
}

/** A deterministic stream of what the monitor reads for a run, with the duplicates and dead letters a restarted stage leaves. */
function events(n: number, seed: number) {
  let k = seed;
  const rnd = () => ((k = (k * 1103515245 + 12345) & 0x7fffffff) % 1000) / 1000;
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  const converted = new Set(ids.filter(() => rnd() < 0.7));
  const out: (() => [string, ...unknown[]])[] = [];
  let mixIndex = 0;
  const metric = (id: string, kind: 'synthesis' | 'evaluation', recordId: string): MetricEventRecord => ({ ...METRIC_DEFAULTS, id, kind, runId: RUN, recordId, time: 0 });
  for (let i = 0; i < n; i += 2) {
    const group = ids.slice(i, i + 2);
    const conv = converted.has(group[0]!);
    const x: MixedTextRecord = { id: group[0]!, runId: RUN, source: conv ? 'augmented' : 'raw', sourceId: group[0]!, text: 'x', tokens: 5 + (i % 7), mixIndex: mixIndex++, round: 1, textIds: group, pairs: conv ? 3 : 0 };
    const r = rnd();
    if (r < 0.1) out.push(() => ['dead', group[0], 'fused', 'synthesis failed', r < 0.05]);
    if (r < 0.15) out.push(() => ['output', { id: group[0], converted: conv, textIds: group, pairs: x.pairs, empty: r < 0.12 }]);
    else out.push(() => ['mixed', x]);
    if (r > 0.9) out.push(() => ['mixed', { ...x, mixIndex: mixIndex++ }]);
    if (r > 0.8) out.push(() => ['mixed', { ...x, id: `general/${i}/${mixIndex}`, source: 'general', textIds: [], mixIndex: mixIndex++, tokens: 4 }]);
    for (const id of group) if (converted.has(id)) out.push(() => ['metric', metric(`synthesis/${RUN}/${id}`, 'synthesis', id)]);
    if (r > 0.95) out.push(() => ['metric', metric(`synthesis/${RUN}/${group[0]}`, 'synthesis', group[0]!)]);
    if (r > 0.97) out.push(() => ['dead', group[1] ?? group[0], 'fused', 'again', false]);
  }
  out.push(() => ['metric', metric(`evaluation/${RUN}/e1/0`, 'evaluation', 'e1')]);
  out.push(() => ['metric', metric(`evaluation/${RUN}/e1/0`, 'evaluation', 'e1')]);
  out.push(() => ['dead-other', 'e2', 'evaluation', 'bad', false]);
  return { ids, converted, out };
}

describe('the run tally (counts by text slot)', () => {
  it.each([1, 2, 3])('gives the counts the maps by id give, on a stream with duplicates and dead letters (seed %i)', async (seed) => {
    const { ids, converted, out } = events(400, seed);
    const model = new ByIdModel();
    const tally = new RunTally(RUN, textsOf(ids, converted));
    for (const make of out) {
      const [kind, ...a] = make();
      if (kind === 'output') {
        model.output(a[0] as DomainOutput);
        tally.output(a[0] as DomainOutput);
      } else if (kind === 'mixed') {
        model.mix(a[0] as MixedTextRecord);
        await tally.mixed(a[0] as MixedTextRecord);
      } else if (kind === 'metric') {
        const e = a[0] as MetricEventRecord;
        model.metrics.set(e.id, e);
        tally.metric(e);
      } else {
        const [id, stage, reason, emitted] = a as [string, string, string, boolean];
        model.dead(id, stage, reason, emitted);
        tally.deadLetter(id, stage, reason, emitted, kind === 'dead-other');
      }
    }
    const want = model.counts(ids, [...converted]);
    expect(want.deadLettered).toBeGreaterThan(0);
    expect({
      accounted: tally.accounted,
      augmented: tally.augmented,
      raw: tally.raw,
      deadLettered: tally.deadLettered,
      namedDeadLetters: tally.namedDeadLetters,
      settled: tally.settled,
      domainTexts: tally.domainTexts,
      mixedDomain: tally.mixedDomain,
      outputTexts: tally.outputTexts,
      pairs: tally.pairs,
      mix: tally.mix,
      synthesisEvents: tally.synthesisEvents,
      evaluationEvents: tally.evaluationEvents,
    }).toEqual(want);
    expect(tally.hasDeadLetter('e2', false)).toBe(true);
    const missing = ids.filter((id) => !model.convertedIds.has(id) && !model.rawIds.has(id) && !model.deadLetters.has(id)).slice(0, 10);
    expect(await tally.texts.namesOf(tally.unaccounted())).toEqual(missing);
  });
});

describe('the tally of the judge stage’s verdicts', () => {
  it('is complete when every round has its id-sampled pairs up to the cap; one round’s extra verdicts do not stand in for another’s', async () => {
    const { isSampledById } = await import('../../processors/round-feedback/pair-sample.ts');
    const ids = Array.from({ length: 400 }, (_, i) => `j${i}`).filter(isSampledById).slice(0, 4);
    const tally = new RunTally(RUN, textsOf(ids, new Set(ids)));
    const sample = (n: number) => ({ context: 'c', contextChars: 1, pairs: Array.from({ length: n }, (_, i) => ({ question: `q${i}`, answer: 'a', kind: 'free' })) });
    // Round 0: two texts of 3 pairs (cap 2 binds); round 1: one text of 1 pair; a text not sampled by id counts nothing.
    const synthesis = (id: string, round: number, pairs: number): MetricEventRecord => ({ ...METRIC_DEFAULTS, id: `synthesis/${RUN}/${id}`, kind: 'synthesis', runId: RUN, recordId: id, time: 1, round, outcome: 'ok', pairs, sample: sample(pairs) });
    tally.metric(synthesis(ids[0]!, 0, 3));
    tally.metric(synthesis(ids[1]!, 0, 3));
    tally.metric(synthesis(ids[2]!, 1, 1));
    expect(tally.expectedJudgements(2)).toBe(3);
    const verdict = (id: string, round: number, pair: number, judged = true): MetricEventRecord => ({
      ...METRIC_DEFAULTS, id: `${RUN}/${round}/${id}/${pair}/j`, kind: 'judgement', runId: RUN, recordId: id, time: 1, round,
      judgement: { pairIndex: pair, judgeModel: 'j', judged, relevant: true, accurate: judged, category: judged ? 'code' : '', error: judged ? '' : 'the judge failed', question: 'q', answer: 'a' },
    });
    // Three verdicts in round 0 (a failed one, then its replacement) and none in round 1: not complete.
    tally.metric(verdict(ids[0]!, 0, 0, false));
    tally.metric(verdict(ids[0]!, 0, 1));
    tally.metric(verdict(ids[1]!, 0, 0));
    tally.metric(verdict(ids[1]!, 0, 0)); // the same verdict read twice counts once
    expect([tally.judgementEvents, tally.judgementsComplete(2)]).toEqual([3, false]);
    tally.metric(verdict(ids[2]!, 1, 0));
    expect([tally.judgementEvents, tally.judgementsComplete(2)]).toEqual([4, true]);
    expect(tally.judge).toEqual({ judged: 3, relevant: 3, accurate: 3 });
    // Verdicts are not evaluation events.
    expect(tally.evaluationEvents).toBe(0);
  });
});
