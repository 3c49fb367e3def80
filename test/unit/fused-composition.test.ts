import { describe, expect, it } from 'vitest';
import { composeFused, type JoinPort } from '../../processors/pipeline/fused-composition.ts';
import { pipelineTopics, recordKey } from '../../processors/pipeline/pipeline-topics.ts';
import { defineProcessor, stageOf, type HandlerResult, type InputRecord, type Stage } from '../../processors/runtime/processor.ts';
import { templatingPoolOutputs } from '../../processors/templating/templating-pool-processor.ts';

const t = pipelineTopics('fc');
type V = { id: string; text: string };

/** A member stage with the real stages' names and outputs, and a handler given here. */
function member(name: string, reads: string, outputs: Record<string, string>, handle: (v: V) => HandlerResult<string> | Promise<HandlerResult<string>>): Stage<never, string> {
  const spec = defineProcessor<V, string>({
    name: `fc.${name}`,
    input: { topics: [reads], schema: 'x' },
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, topic]) => [k, { topic, schema: 'x' }])),
    handle: (r) => handle(r.value),
  });
  return stageOf(spec) as unknown as Stage<never, string>;
}

const emit = (to: string, v: V) => ({ to, key: recordKey('r', v.id), value: v });
const upper = (v: V): V => ({ ...v, text: v.text.toUpperCase() });

function members(opts: { synthesis?: (v: V) => HandlerResult<string> | Promise<HandlerResult<string>> } = {}) {
  return {
    templating: member('templating', t.raw, { requests: t.requests, augmented: t.augmented, results: t.results }, (v) => (v.text === 'keep' ? [emit('augmented', v)] : [emit('requests', v)])),
    synthesis: member('synthesis', t.requests, { results: t.results }, opts.synthesis ?? ((v) => [emit('results', upper(v))])),
    'round-feedback': member('round-feedback', t.results, { pool: t.pool, augmented: t.augmented, metrics: t.metrics }, (v) => [emit('metrics', v), emit('pool', v), emit('augmented', v)]),
    mixing: member('mixing', t.augmented, { mixed: t.mixed, state: t.mixerState }, (v) => (v.text === '' ? { skip: 'empty' } : [emit('mixed', v), { to: 'state', key: 'r', value: { n: 1 } }])),
  };
}

/** A join that writes what it is given and pairs nothing (every collection waits for a partner that never comes). */
const join: JoinPort<V> = {
  member: 'templating-pool',
  outputs: templatingPoolOutputs(t),
  begin: () => ({ paired: () => undefined, give: (e) => ({ write: { ...e, value: { changelog: true } } }), end: () => undefined }),
};

const input = (v: V): InputRecord<never> => ({ key: v.id, value: v as never, headers: {}, timestamp: '0', source: { topic: t.raw, partition: 0, offset: '0' } });
const handle = (s: Stage<never, string>, v: V) => s.spec.handle(input(v));

describe('a fused stage composed by the graph', () => {
  it('routes each emit to the member that reads it, depth first, and writes what the fused stage writes', async () => {
    const s = composeFused(t, 'fused', members(), join);
    expect(Object.keys(s.spec.outputs).sort()).toEqual(['augmented', 'metrics', 'mixed', 'pool', 'state']);
    const out = (await handle(s, { id: 'a', text: 'abc' })) as { to: string; value: unknown }[];
    // requests and results stay in memory; the pool record is the join's changelog form; the mixer runs in place.
    expect(out.map((e) => e.to)).toEqual(['metrics', 'pool', 'mixed', 'state']);
    expect(out[1]!.value).toEqual({ changelog: true });
    expect((out[2]!.value as V).text).toBe('ABC');
  });

  it('stays synchronous where every member is, and keeps emit order when one is not', async () => {
    const sync = composeFused(t, 'fused', members(), join);
    expect(handle(sync, { id: 'a', text: 'x' })).not.toBeInstanceOf(Promise);
    const slow = composeFused(t, 'fused', members({ synthesis: async (v) => [emit('results', upper(v))] }), join);
    const r = handle(slow, { id: 'b', text: 'y' });
    expect(r).toBeInstanceOf(Promise);
    expect(((await r) as { to: string }[]).map((e) => e.to)).toEqual(['metrics', 'pool', 'mixed', 'state']);
  });

  it('writes a record its reader skips when the fused stage writes its topic; else counts the skip', async () => {
    const s = composeFused(t, 'fused', members(), join);
    const out = (await handle(s, { id: 'e', text: '' })) as { to: string }[];
    expect(out.map((e) => e.to)).toEqual(['metrics', 'pool', 'augmented']);
    const skipping = composeFused(t, 'fused', members({ synthesis: () => ({ skip: 'not today' }) }), join);
    expect(await handle(skipping, { id: 'f', text: 'z' })).toEqual({ skip: 'not today' });
  });

  it('keeps a member’s dead letter with the outputs, and names the member a failure happened in', async () => {
    const dl = composeFused(t, 'fused', members({ synthesis: (v) => ({ emits: [emit('results', v)], deadLetter: 'failed for good' }) }), join);
    const r = (await handle(dl, { id: 'g', text: 'q' })) as { emits: unknown[]; deadLetter: string };
    expect(r.deadLetter).toBe('failed for good');
    expect(r.emits).toHaveLength(4);
    const failing = composeFused(t, 'fused', members({ synthesis: async () => Promise.reject(new Error('endpoint gone')) }), join);
    await expect(handle(failing, { id: 'h', text: 'q' })).rejects.toThrow(/^synthesis: .*endpoint gone/);
    const throwing = composeFused(t, 'fused', members({ synthesis: () => { throw new Error('bad prompt'); } }), join);
    expect(() => handle(throwing, { id: 'i', text: 'q' })).toThrow(/^synthesis: .*bad prompt/);
  });

  it('settles what the join holds once the chain reaches the member writing the join topic, before that member’s emits', async () => {
    const closing: JoinPort<V> = {
      ...join,
      begin: () => ({
        paired: () => undefined,
        beforeGive: async () => [{ to: 'augmented', key: 'r/old', value: { id: 'old', text: 'carried over' } }],
        give: (e) => ({ write: e }),
        end: () => undefined,
      }),
    };
    const out = (await handle(composeFused(t, 'fused', members(), closing), { id: 'a', text: 'abc' })) as { to: string; value: V }[];
    expect(out.map((e) => `${e.to}:${e.value.id ?? ''}`)).toEqual(['mixed:old', 'state:', 'metrics:a', 'pool:a', 'mixed:a', 'state:']);
  });

  it('refuses a composition the graph does not allow', () => {
    const { mixing: _, ...noMixer } = members();
    expect(() => composeFused(t, 'fused', noMixer, join)).toThrow('needs its member mixing');
    expect(() => composeFused(t, 'fused', members())).toThrow('no join port serves it');
    const stray = { ...members(), synthesis: member('synthesis', t.requests, { results: t.results, evalRecords: t.evalRecords }, () => []) };
    expect(() => composeFused(t, 'fused', stray, join)).toThrow('neither hands on nor writes');
  });
});
