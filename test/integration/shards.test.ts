import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMALL_TOKENIZER } from '../../ops/stack/models.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { exportShards } from '../../trainers/shards/export-shards.ts';
import { startTrainerSink, trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { decodeTokenIds } from '../../trainers/sink/sequence-packer.ts';
import { logger, testConfig, testKafka, uniq } from './helpers.ts';
import { batchesOf, readBatches, seedMixed } from './token-batches.ts';

/**
 * Both shard formats read by the readers the trainers use: megatron-core's IndexedDataset (Megatron-LM) and Hugging
 * Face datasets' Parquet loader. Prints {"megatron": [[ids…]…], "parquet": [[ids…]…]}, shards in order.
 */
const READ_SHARDS = `
import glob, json, os, sys, tempfile
from megatron.core.datasets.indexed_dataset import IndexedDataset
import datasets
d = sys.argv[1]
megatron = []
for idx in sorted(glob.glob(os.path.join(d, "shard-*.idx"))):
    ds = IndexedDataset(idx[: -len(".idx")])
    assert len(ds.document_indices) == len(ds) + 1
    megatron += [ds[i].tolist() for i in range(len(ds))]
files = sorted(glob.glob(os.path.join(d, "shard-*.parquet")))
pq = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=tempfile.mkdtemp())
rows = pq.to_dict()
print(json.dumps({"megatron": megatron, "parquet": rows["input_ids"], "steps": rows["global_step"]}))
`;

describe('shards for trainers that read files, from the trainer sink’s token batches', () => {
  it('writes Megatron and Parquet shards equal to the Kafka batches, read by megatron-core and HF datasets, and resumes after the last whole shard', async () => {
    const prefix = uniq('it-shards');
    const runId = 'shard-run';
    const { records, produceRest } = await seedMixed(prefix, runId, 80, (_, i) => i < 50);
    // A second run in the same topic: its batches are passed over.
    const other = await seedMixed(prefix, 'other-run', 10);
    const otherBatches = await batchesOf(other.records.map((r) => r.text), 16, 2);
    const firstHalf = await batchesOf(records.slice(0, 50).map((r) => r.text), 16, 2);
    const whole = await batchesOf(records.map((r) => r.text), 16, 2);
    const topics = trainerSinkTopics(prefix);
    const opts = { name: `${prefix}.trainer-sink`, ...topics, tokenizerJson: inject('smallTokenizer'), eosToken: SMALL_TOKENIZER.eosToken, seqLen: 16, batchSize: 2, worldSize: 2 };
    const cfg = testConfig({ exactlyOnce: true });
    let sink = await startTrainerSink(cfg, opts, { logger });
    const firstBatches = await readBatches(topics.output, firstHalf + otherBatches);
    await sink.stop();

    const out = mkdtempSync(join(tmpdir(), 'ipt-shards-it-'));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    const dir = join(out, runId);
    const serde = new AvroSerde(inject('stack').registryUrl);
    // 4 batches of 2 rows × 17 uint16 ids = 272 bytes: a shard closes after its 4th batch.
    const common = { kafka: testKafka(), serde, topic: topics.output, runId, dir, formats: ['megatron', 'parquet'] as const, shardBytes: 272 };
    const first = await exportShards(common);
    expect(first.resumedAt).toEqual({ shard: 0, step: 0 });
    expect(first.otherRuns).toBeGreaterThan(0);
    expect(first.duplicates).toBe(0);
    const mine = firstBatches.filter((b) => b.runId === runId);
    expect(mine.length).toBe(firstHalf);
    expect([first.batches, first.nextStep, first.held]).toEqual([firstHalf, firstHalf, 0]);
    expect(first.shards.length).toBe(Math.ceil(first.batches / 4));
    expect(first.shards.slice(0, -1).every((m) => m.batches === 4)).toBe(true);

    // More texts while an export follows the topic: it goes on from the step after its last shard, and writes the
    // last batches as a shard once none came for a while.
    const stop = new AbortController();
    const seen: number[] = [];
    const following = exportShards({ ...common, follow: { pollMs: 300, idleFlushMs: 2000, signal: stop.signal }, onShard: (m) => seen.push(m.globalSteps.last) });
    await produceRest();
    sink = await startTrainerSink(cfg, opts, { logger });
    const all = (await readBatches(topics.output, whole + otherBatches)).filter((b) => b.runId === runId);
    await sink.stop();
    await expect.poll(() => seen.at(-1), { timeout: 30_000, interval: 200 }).toBe(whole - 1);
    stop.abort();
    const second = await following;
    expect(second.resumedAt).toEqual({ shard: first.shards.length, step: first.nextStep });
    expect(second.duplicates).toBe(0);
    // Nothing new: an export reads up to the end (the sink's last commit marker) and writes nothing.
    const third = await exportShards(common);
    expect([third.batches, third.shards.length, third.nextStep]).toEqual([0, 0, whole]);
    const total = first.batches + second.batches;
    all.sort((a, b) => a.globalStep - b.globalStep);
    expect(all.map((b) => b.globalStep)).toEqual(Array.from({ length: whole }, (_, i) => i));
    expect(total).toBe(whole);
    expect(second.batches).toBeGreaterThan(0);

    // The manifests chain: each shard starts where the one before ended; offsets name the batches' records.
    const manifests = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    expect(manifests.length).toBe(first.shards.length + second.shards.length);
    const shards = [...first.shards, ...second.shards];
    shards.forEach((m, i) => {
      expect(m.shard).toBe(i);
      expect(m.globalSteps.first).toBe(i === 0 ? 0 : shards[i - 1]!.globalSteps.last + 1);
      for (const o of m.offsets) {
        const inShard = all.filter((b) => b.partition === o.partition && b.globalStep >= m.globalSteps.first && b.globalStep <= m.globalSteps.last);
        expect([inShard[0]!.offset, inShard.at(-1)!.offset, inShard.length]).toEqual([o.first, o.last, o.batches]);
      }
    });

    // Read by the trainers' own readers: the rows equal the Kafka batches' rows, in global-step order.
    const expected = all.flatMap((b) => {
      const ids = Array.from(decodeTokenIds(b.tokens, b.dtype));
      return [ids.slice(0, 17), ids.slice(17, 34)];
    });
    const py = spawnSync(inject('trainerPython'), ['-c', READ_SHARDS, dir], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' } });
    expect(py.status, py.stderr).toBe(0);
    const read = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as { megatron: number[][]; parquet: number[][]; steps: number[] };
    expect(read.megatron).toEqual(expected);
    expect(read.parquet).toEqual(expected);
    expect(read.steps).toEqual(all.flatMap((b) => [b.globalStep, b.globalStep]));
    expect(expected.length).toBe(total * 2);
  }, 240_000);
});
