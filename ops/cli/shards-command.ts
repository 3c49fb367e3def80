import { join } from 'node:path';
import { createLogger } from '../../processors/runtime/logger.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { exportShards } from '../../trainers/shards/export-shards.ts';
import type { ShardFormat } from '../../trainers/shards/shard-manifest.ts';
import { trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { ProgressLine } from '../jobs/progress-line.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('shards');


/** `ipt shards`: one run's token batches as Megatron and/or Parquet shards with manifests, resumable. */
export async function shardsCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('shards', argv, FLAGS.shards);
  if (!values.run || !values.out) throw new UsageError(`shards: --run and --out are required\n${USAGE}`);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(values.run)) throw new UsageError(`shards: --run "${values.run}" is not a run id (letters, digits, ".", "_", "-")`);
  const formats: ShardFormat[] = [...new Set(values.format)];
  const shardBytes = values['shard-mb'] * 2 ** 20;
  const idleFlushMs = values['idle-flush-s'] * 1000;
  const cfg = runtimeConfig();
  const logger = createLogger('ipt-shards', cfg.logLevel);
  const prefix = values.prefix;
  const dir = join(values.out, values.run);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (values.follow) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  // One progress line a second while catching up (records of the token topic; transaction markers make the total a bound).
  let progress: { line: ProgressLine; total: number } | undefined;
  try {
    const s = await exportShards({
      kafka: createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: `${cfg.clientId}-shards`, logger }),
      serde: new AvroSerde(cfg.registryUrl),
      topic: trainerSinkTopics(prefix).output,
      runId: values.run,
      dir,
      formats,
      shardBytes,
      follow: values.follow ? { pollMs: 2000, idleFlushMs, signal: stop.signal } : undefined,
      onProgress: (read, toRead) => {
        if (read === 0 || toRead < 10_000) return;
        if (progress?.total !== toRead) progress = { line: new ProgressLine(toRead, 'records'), total: toRead };
        const line = progress.line.update(read);
        if (line !== undefined) process.stderr.write(`shards: ${line}\n`);
      },
      onShard: (m) => process.stderr.write(`shards: ${join(dir, `shard-${String(m.shard).padStart(5, '0')}`)}: steps ${m.globalSteps.first}–${m.globalSteps.last}, ${m.sequences} sequences, ${m.tokens} tokens\n`),
    });
    if (values.json) console.log(JSON.stringify({ ...s, shards: s.shards.map((m) => ({ shard: m.shard, globalSteps: m.globalSteps, sequences: m.sequences, tokens: m.tokens, files: m.files.map((f) => f.file) })) }));
    else {
      console.log(
        `shards: run ${s.runId}: ${s.shards.length} shard(s) written to ${dir} (from shard ${s.resumedAt.shard}, step ${s.resumedAt.step}): ${s.batches} batches, ${s.sequences} sequences, ${s.tokens} tokens; ${s.duplicates} duplicate steps dropped, ${s.otherRuns} records of other runs passed over`,
      );
      if (s.held > 0) console.log(`  ${s.held} later steps wait for step ${s.nextStep}, not in the topic yet: the next export takes them`);
    }
    if (s.resumedAt.step === 0 && s.batches === 0) process.stderr.write(`shards: no token batches of run "${values.run}" in ${trainerSinkTopics(prefix).output}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
