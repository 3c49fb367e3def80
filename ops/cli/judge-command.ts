import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { judgeGuide } from '../../processors/evaluation/judge.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { judgeRun } from '../jobs/judge.ts';
import { UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { pipelineOptions } from './pipeline-options.ts';

/** `ipt judge`: the LLM judge over a finished run's sampled pairs. */
export async function judgeCommand(argv: string[]): Promise<number> {
  const { raw } = readArgv('judge', argv, FLAGS.judge);
  const v = readFlags('judge', raw, FLAGS.judge);
  if (!v.run || !v['judge-url'] || !v['judge-model']) throw new UsageError(`judge: --run, --judge-url and --judge-model are required\n${usageOf('judge')}`);
  const endpoints = v['judge-url'].split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of endpoints) if (!URL.canParse(u)) throw new UsageError(`judge: --judge-url "${u}" is not a URL`);
  const opts = pipelineOptions('judge', { prefix: raw.prefix });
  const logger = createLogger('ipt-judge', logLevel('warn'));
  await migrate(opts.clickhouse.url, opts.clickhouse.database);
  const ch = clickhouseClient(opts.clickhouse.url, opts.clickhouse.database);
  const judge = new SynthesisPool({
    endpoints,
    model: v['judge-model'],
    initialWindow: Math.min(4, v.concurrency),
    maxWindow: v.concurrency,
    maxAttempts: v.retries + 1,
    timeoutMs: v['timeout-ms'],
    backoffMs: 250,
    extraBody: judgeGuide(v.guided),
  });
  try {
    const r = await judgeRun({
      ch,
      kafka: createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-judge`, logger }),
      serde: new AvroSerde(opts.runtime.registryUrl),
      topics: pipelineTopics(opts.prefix),
      runId: v.run,
      sample: v.sample,
      seed: v.seed,
      judge,
      judgeModel: v['judge-model'],
      concurrency: v.concurrency * endpoints.length,
      log: (l) => process.stderr.write(`${l}\n`),
    });
    const pct = (x: { rate: number; low: number; high: number }) => `${(100 * x.rate).toFixed(1)}% [${(100 * x.low).toFixed(1)}, ${(100 * x.high).toFixed(1)}]`;
    if (v.json) console.log(JSON.stringify(r));
    else {
      console.log(`judge: run ${r.runId} by ${r.judgeModel}: ${r.judged}/${r.sampled} pairs judged (${r.unreadable} unreadable, ${r.failed} failed); relevant ${pct(r.relevant)}, accurate ${pct(r.accurate)} (95% intervals); ${r.seconds}s`);
      for (const x of r.rounds) console.log(`  round ${x.round}: ${x.judged}/${x.sampled} judged of ${x.candidates} sampled pairs; relevant ${pct(x.relevant)}, accurate ${pct(x.accurate)}`);
      console.log(`  categories: ${r.categories.map((c) => `${c.category} ${(100 * c.share).toFixed(1)}%`).join(', ') || 'none'}`);
      for (const p of r.problems) console.log(`  ${p}`);
    }
    if (r.sampled === 0) process.stderr.write(`judge: no sampled pairs of run "${v.run}" in ClickHouse's pair_samples\n`);
    return r.judged > 0 ? 0 : 1;
  } finally {
    await ch.close();
  }
}
