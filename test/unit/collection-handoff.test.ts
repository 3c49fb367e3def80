import { describe, expect, it } from 'vitest';
import { CollectionHandoff } from '../../processors/pipeline/collection-handoff.ts';
import { planRun } from '../../connectors/ingest/run-plan.ts';
import type { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import type { RoundCollectionRecord } from '../../processors/pipeline/records.ts';

const { run } = planRun(
  { runId: 'r', preset: 'none', rounds: 2, seed: 0, model: 'm', maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0 },
  Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, text: `text ${i}`, source: 's' })),
);
const collection = (position: number): RoundCollectionRecord => ({ runId: 'r', round: 0, position, collectionId: `t${position}`, collection: [], finishedAt: 0 });

/** A context whose round-pool topic must not be touched: every hand-over here is in memory. */
const noTopic = new Proxy({} as PipelineContext, {
  get() {
    throw new Error('read the round-pool topic');
  },
});

describe('CollectionHandoff', () => {
  it('hands a collection to the next-round text at the same position, also when that text asks before it is finished', async () => {
    const h = new CollectionHandoff(noTopic);
    const s0 = h.open('r', 0);
    const s1 = h.open('r', 1);
    s0.fill(collection(0));
    // A filled slot is handed over at once, with no promise to wait on.
    expect(h.take(run, 0, 0)).toEqual(collection(0));
    const waiting = h.take(run, 0, 1);
    expect(waiting).toBeInstanceOf(Promise);
    s1.fill(collection(1));
    s1.close(); // a no-op once filled
    await expect(waiting).resolves.toEqual(collection(1));
    expect(h.fromTopic).toBe(0);
  });

  it('goes to the round-pool topic for a slot it does not hold: closed without a collection, or taken already', async () => {
    const reads: string[] = [];
    const h = new CollectionHandoff({} as PipelineContext, 2);
    // The topic read is replaced by a record of what was asked for.
    (h as unknown as { poolTable: () => Promise<unknown> }).poolTable = async () => ({ get: async (key: string) => (reads.push(key), collection(-1)) });
    h.open('r', 0).close();
    await h.take(run, 0, 0);
    const s1 = h.open('r', 1);
    s1.fill(collection(1));
    await h.take(run, 0, 1);
    await h.take(run, 0, 1);
    expect(reads).toEqual(['r/0/0', 'r/0/1']);
    expect(h.fromTopic).toBe(2);
    await h.stop();
  });

  it('moves the oldest filled slots beyond maxHeld to disk and hands them over whole, without the topic', async () => {
    const h = new CollectionHandoff(noTopic, 2);
    const withText = (p: number): RoundCollectionRecord => ({
      ...collection(p),
      collection: [{ contextId: `c${p}`, context: `context ${p} ✓ \u{1F600}`, pairs: [{ question: 'q', answer: 'a' }], inheritFromPrev: p % 2 === 0, followedByNext: false, contextFrom: '', rawKey: `r/t${p}` }],
    } as RoundCollectionRecord);
    const open = h.open('r', 0); // never filled: not evicted, whatever the bound
    for (const seq of [1, 2, 3, 4, 5]) h.open('r', seq).fill(withText(seq));
    // Six slots open with room for two: the four oldest filled ones went to disk.
    expect(h.onDisk).toBe(4);
    for (const seq of [1, 2, 3, 4, 5]) expect(await h.take(run, 0, seq)).toEqual(withText(seq));
    expect(h.fromDisk).toBe(4);
    expect(h.onDisk).toBe(0);
    expect(h.fromTopic).toBe(0);
    open.fill(withText(0));
    expect(await h.take(run, 0, 0)).toEqual(withText(0));
    await h.stop();
  });

  it('a text handled again supersedes the collection an earlier attempt spooled', async () => {
    const h = new CollectionHandoff(noTopic, 1);
    h.open('r', 1).fill(collection(1));
    h.open('r', 2).fill(collection(2)); // seq 1 goes to disk
    expect(h.onDisk).toBe(1);
    const again = h.open('r', 1); // the same text again, after an abandoned transaction
    expect(h.onDisk).toBe(1); // seq 2 went to disk as seq 1's new slot opened; the old seq 1 is gone
    const second = { ...collection(1), finishedAt: 7 };
    again.fill(second);
    expect(await h.take(run, 0, 1)).toEqual(second);
    expect(await h.take(run, 0, 2)).toEqual(collection(2));
    await h.stop();
  });
});
