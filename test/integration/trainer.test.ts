import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tokenizers from '@anush008/tokenizers';
import { readFileSync as read } from 'node:fs';
import { SMALL_TOKENIZER } from '../../ops/stack/models.ts';
import { startTrainerSink, trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { decodeTokenIds } from '../../trainers/sink/sequence-packer.ts';
import { clickhouseClient, migrate, queryRows } from '../../connectors/clickhouse/clickhouse.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { exportShards } from '../../trainers/shards/export-shards.ts';
import { logger, stackEnv, testConfig, testKafka, uniq } from './helpers.ts';
import { packedRun, readBatches, seedMixed } from './token-batches.ts';

const PARITY_TEXTS = [
  ...read('examples/sample-corpus.jsonl', 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text),
  'Café naïve — “quotes” and ‘apostrophes’, 東京 and Ελληνικά, emoji 🙂🚀, tabs\tand\nnewlines.',
  'UPPER lower MiXeD 1234567890 3.14159 e=mc^2 <tag attr="x">&amp;</tag> C++ / C# / F#',
  '   leading and trailing spaces   ',
  '',
];

describe('the trainer sink and the PyTorch trainer on the real stack', () => {
  it('tokenizes exactly as Hugging Face’s Python tokenizers do, with a tokenizer file an installed package ships', async () => {
    const file = inject('smallTokenizer');
    const tok = tokenizers.Tokenizer.fromFile(file);
    const ours = [];
    for (const t of PARITY_TEXTS) ours.push((await tok.encode(t, null, { addSpecialTokens: false })).getIds());
    const script = 'import json,sys; from tokenizers import Tokenizer; t=Tokenizer.from_file(sys.argv[1]); print(json.dumps([t.encode(s, add_special_tokens=False).ids for s in json.load(sys.stdin)]))';
    const py = spawnSync(inject('trainerPython'), ['-c', script, file], { input: JSON.stringify(PARITY_TEXTS), encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    expect(ours).toEqual(JSON.parse(py.stdout));
    expect(ours.flat().length).toBeGreaterThan(2000);
  });

  it('packs the mixed stream into seq_len + 1 sequences, batch per rank, continuing exactly across a restart', async () => {
    const prefix = uniq('it-sink');
    const runId = 'sink-run';
    // The first half goes in before the sink starts, the second half only after it stopped: the restarted sink
    // must pick up the saved packing state (a part-filled sequence and batch) to continue the stream exactly.
    const { records, produceRest } = await seedMixed(prefix, runId, 60, (_, i) => i < 30);
    const topics = trainerSinkTopics(prefix);
    const opts = { name: `${prefix}.trainer-sink`, ...topics, tokenizerJson: inject('smallTokenizer'), eosToken: SMALL_TOKENIZER.eosToken, seqLen: 32, batchSize: 2, worldSize: 2 };
    // Exactly-once: the packing state and the batches commit together, so a restart continues the stream exactly.
    const cfg = testConfig({ exactlyOnce: true, batchSize: 7 });
    // The expected stream: every text's ids, then [SEP].
    const tok = tokenizers.Tokenizer.fromFile(inject('smallTokenizer'));
    const sep = tok.tokenToId(SMALL_TOKENIZER.eosToken)!;
    const stream: number[] = [];
    for (const r of records) stream.push(...(await tok.encode(r.text, null, { addSpecialTokens: false })).getIds(), sep);
    let firstHalf = 0;
    for (const r of records.slice(0, 30)) firstHalf += (await tok.encode(r.text, null, { addSpecialTokens: false })).getLength() + 1;
    const firstBatches = Math.floor(Math.floor((firstHalf - 1) / 32) / 2);
    expect((firstHalf - 1) % 64).not.toBe(0); // the first half ends inside a batch: there is state to carry
    let sink = await startTrainerSink(cfg, opts, { logger });
    await readBatches(topics.output, firstBatches);
    await sink.stop();
    await produceRest();
    sink = await startTrainerSink(cfg, opts, { logger });
    const sequences = Math.floor((stream.length - 1) / 32);
    const batches = Math.floor(sequences / 2);
    const got = await readBatches(topics.output, batches);
    await sink.stop();
    expect(got).toHaveLength(batches);
    got.sort((a, b) => a.globalStep - b.globalStep);
    expect(got.map((b) => b.globalStep)).toEqual(Array.from({ length: batches }, (_, i) => i));
    for (const b of got) {
      expect(b.partition).toBe(b.globalStep % 2);
      expect(b.rank).toBe(b.partition);
      expect(b.step).toBe(Math.floor(b.globalStep / 2));
      expect(b.dtype).toBe('uint16');
      const ids = Array.from(decodeTokenIds(b.tokens, b.dtype));
      for (let row = 0; row < 2; row++) {
        const k = b.globalStep * 2 + row;
        expect(ids.slice(row * 33, row * 33 + 33)).toEqual(stream.slice(k * 32, k * 32 + 33));
      }
    }
    // Each token of the stream is counted once, under the source that wrote it.
    const counted = got.reduce((s, b) => s + b.sources.reduce((t, x) => t + Number(x.tokens), 0), 0);
    expect(counted).toBe(batches * 2 * 32 + 1);
  });

  it('trains two gloo ranks on the topic and resumes after a crash with exactly the next batch', async () => {
    const prefix = uniq('it-train');
    const runId = 'train-run';
    const topics = await packedRun(prefix, runId);

    const dir = mkdtempSync(join(tmpdir(), 'ipt-train-'));
    const log = join(dir, 'steps.jsonl');
    const torchrun = (extra: string[]) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(
          inject('trainerPython'),
          ['-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', String(29500 + Math.floor(Math.random() * 500)), '-m', 'instruct_pt_trainer.train',
            '--topic', topics.output, '--run-id', runId, '--steps', '5', '--checkpoint-dir', join(dir, 'ckpt'), '--checkpoint-every', '2',
            '--hidden-size', '32', '--layers', '1', '--heads', '2', '--log-file', log, '--idle-timeout-s', '30', ...extra],
          { env: { ...process.env, ...stackEnv(), OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'inherit', 'inherit'] },
        );
        p.on('exit', (code) => resolve(code));
      });
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // First run: crashes right after step 3; the last checkpoint is step 2.
    expect(await torchrun(['--exit-after-step', '3'])).not.toBe(0);
    expect(existsSync(join(dir, 'ckpt', 'step-2', 'meta.json'))).toBe(true);
    const first = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; step: number; offset: number; globalStep: number });
    expect(await torchrun(['--resume'])).toBe(0);
    const all = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; step: number; offset: number; globalStep: number });
    const second = all.slice(first.length);
    for (const rank of [0, 1]) {
      const before = first.filter((e) => e.rank === rank);
      const after = second.filter((e) => e.rank === rank);
      // Resumed at step 3 with the batch right after the checkpoint's: the same batch step 3 had before the crash.
      expect(after.map((e) => e.step)).toEqual([3, 4, 5]);
      expect(after.map((e) => e.offset)).toEqual([2, 3, 4]);
      expect(after[0]!.globalStep).toBe(before.find((e) => e.step === 3)!.globalStep);
      expect(before.filter((e) => e.step <= 2).map((e) => e.offset)).toEqual([0, 1]);
      expect(after.every((e) => e.globalStep % 2 === rank)).toBe(true);
    }
    // Two batches per optimizer step: the log's step is the optimizer step, and rank 0 prints the step's metrics.
    const accumLog = join(dir, 'accum.jsonl');
    const accum = spawnSync(
      inject('trainerPython'),
      ['-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', String(29500 + Math.floor(Math.random() * 500)), '-m', 'instruct_pt_trainer.train',
        '--topic', topics.output, '--run-id', runId, '--steps', '3', '--grad-accum', '2', '--warmup-steps', '1', '--metrics-every', '1', '--checkpoint-dir', join(dir, 'ckpt-accum'),
        '--hidden-size', '32', '--layers', '1', '--heads', '2', '--log-file', accumLog, '--idle-timeout-s', '30'],
      { env: { ...process.env, ...stackEnv(), OMP_NUM_THREADS: '1' }, encoding: 'utf8' },
    );
    expect(accum.status, accum.stderr).toBe(0);
    const batches = readFileSync(accumLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; step: number; offset: number });
    for (const rank of [0, 1]) expect(batches.filter((e) => e.rank === rank).map((e) => [e.step, e.offset])).toEqual([[1, 0], [1, 1], [2, 2], [2, 3], [3, 4], [3, 5]]);
    const metrics = accum.stdout.split('\n').filter((l) => l.startsWith('{"step"')).map((l) => JSON.parse(l) as { step: number; lr: number; gradNorm: number; tokensPerSecond: number; mfu: number | null });
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    // Warmed up to the peak by step 1, then cosine towards a tenth of it: half-way at the third and last step.
    expect(metrics.map((m) => m.lr)).toEqual([expect.closeTo(3e-4, 10), expect.closeTo(3e-4, 10), expect.closeTo(3e-5 + 2.7e-4 / 2, 10)]);
    for (const m of metrics) expect(m.gradNorm > 0 && m.tokensPerSecond > 0 && m.mfu === null).toBe(true);
  }, 300_000);
});

describe('the trainer with FSDP2 on the real stack', () => {
  it('shards over two gloo ranks, evaluates a held-out shard, writes its metrics to ClickHouse and saves in transformers’ format', async () => {
    const prefix = uniq('it-fsdp');
    const runId = 'fsdp-run';
    const topics = await packedRun(prefix, runId);
    const dir = mkdtempSync(join(tmpdir(), 'ipt-fsdp-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // The held-out set: the run's first shard (a real job names a run of held-out domain texts).
    await exportShards({ kafka: testKafka(), serde: new AvroSerde(inject('stack').registryUrl), topic: topics.output, runId, dir: join(dir, 'shards'), formats: ['megatron'], shardBytes: 1 << 20 });
    const db = `ipt_fsdp_${Date.now()}`;
    await migrate(inject('stack').clickhouseUrl, db);
    const ch = clickhouseClient(inject('stack').clickhouseUrl, db);
    onTestFinished(() => ch.close());
    const run = spawnSync(
      inject('trainerPython'),
      ['-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', String(29500 + Math.floor(Math.random() * 500)), '-m', 'instruct_pt_trainer.train',
        '--topic', topics.output, '--run-id', runId, '--steps', '4', '--fsdp', '--checkpoint-dir', join(dir, 'ckpt'), '--checkpoint-every', '2',
        '--held-out', join(dir, 'shards', 'shard-00000'), '--eval-every', '2', '--metrics-every', '1', '--clickhouse-db', db, '--job', 'fsdp-test',
        '--save-pretrained', join(dir, 'hf'), '--hidden-size', '32', '--layers', '2', '--heads', '2', '--idle-timeout-s', '30'],
      { env: { ...process.env, ...stackEnv(), OMP_NUM_THREADS: '1' }, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split('\n').filter((l) => l.startsWith('{"step"')).map((l) => JSON.parse(l) as { step: number; loss: number; heldOutLoss?: number; ranks: number });
    expect(lines.map((m) => [m.step, m.heldOutLoss === undefined])).toEqual([[1, true], [2, false], [3, true], [4, false]]);
    expect(lines.every((m) => m.ranks === 2 && m.loss > 0)).toBe(true);
    // A distributed checkpoint: one file of tensors per rank, no full state gathered on rank 0.
    for (const step of [2, 4]) expect(readdirSync(join(dir, 'ckpt', `step-${step}`)).sort()).toEqual(['.metadata', '__0_0.distcp', '__1_0.distcp', 'meta.json']);
    const rows = await queryRows<{ step: string; held_out_loss: number | null; ranks: number }>(ch, "SELECT step, held_out_loss, ranks FROM trainer_steps FINAL WHERE run_id = 'fsdp-run' AND job = 'fsdp-test' ORDER BY step");
    expect(rows.map((r) => [Number(r.step), r.held_out_loss, r.ranks])).toEqual(lines.map((m) => [m.step, m.heldOutLoss === undefined ? null : expect.closeTo(m.heldOutLoss, 5), 2]));
    // Saved from the shards in transformers' format: it loads, with the trained model's shape.
    const load = spawnSync(inject('trainerPython'), ['-c', `import transformers; m = transformers.AutoModelForCausalLM.from_pretrained(${JSON.stringify(join(dir, 'hf'))}, local_files_only=True); print(m.config.num_hidden_layers, m.config.hidden_size)`], { encoding: 'utf8' });
    expect(load.status, load.stderr).toBe(0);
    expect(load.stdout.trim()).toBe('2 32');
  }, 300_000);
});

describe('the trainer package’s own tests (pytest)', () => {
  it('passes', () => {
    const res = spawnSync(inject('trainerPython'), ['-m', 'pytest', '-q', 'trainers/python/tests'], { encoding: 'utf8' });
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toMatch(/\d+ passed/);
  });
});
