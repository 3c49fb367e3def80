import { resolve } from 'node:path';
import { clickhouseClient, migrate } from '../../connectors/clickhouse/clickhouse.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { reportRun } from '../jobs/report.ts';
import { UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { pipelineOptions } from './pipeline-options.ts';

/** `ipt report`: a run's analyses as a static HTML page with PNG charts, beside the paper's figures. */
export async function reportCommand(argv: string[]): Promise<number> {
  const { raw } = readArgv('report', argv, FLAGS.report);
  const v = readFlags('report', raw, FLAGS.report);
  if (!v.run || !v.out) throw new UsageError(`report: --run and --out are required\n${usageOf('report')}`);
  const opts = pipelineOptions('report', { prefix: raw.prefix });
  const logger = createLogger('ipt-report', logLevel('warn'));
  await migrate(opts.clickhouse.url, opts.clickhouse.database);
  const ch = clickhouseClient(opts.clickhouse.url, opts.clickhouse.database);
  try {
    const kafka = v['no-kafka']
      ? undefined
      : {
          kafka: createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-report`, logger }),
          serde: new AvroSerde(opts.runtime.registryUrl),
          topics: pipelineTopics(opts.prefix),
        };
    const r = await reportRun({ ch, runId: v.run, ...(kafka ? { kafka } : {}), warn: (l) => process.stderr.write(`report: ${l}\n`) }, resolve(v.out));
    if (v.json) console.log(JSON.stringify(r));
    else {
      console.log(`report: run ${r.runId}: ${r.dir}/index.html, ${r.charts} charts`);
      if (r.missing.length > 0) console.log(`  no data for: ${r.missing.join(', ')} (the page says how to get it)`);
    }
    return 0;
  } finally {
    await ch.close();
  }
}
