import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { clickhouseClient } from '../../connectors/clickhouse/clickhouse.ts';
import { auditRun } from '../jobs/audit.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { usageOf } from './command-help.ts';
import { pipelineOptions } from './pipeline-options.ts';
import { ProgressLine } from '../jobs/progress-line.ts';

const USAGE = usageOf('audit');

/** `ipt audit`: reconcile one run across its topics and ClickHouse; exit 1 when anything is missing. */
export async function auditCommand(argv: string[]): Promise<number> {
  const { raw } = readArgv('audit', argv, FLAGS.audit);
  const values = readFlags('audit', raw, FLAGS.audit);
  if (!values.run) throw new UsageError(`audit: --run is required\n${USAGE}`);
  const sample = values.sample;
  const opts = pipelineOptions('audit', { prefix: raw.prefix });
  const logger = createLogger('ipt-audit', logLevel('warn'));
  const ch = clickhouseClient(opts.clickhouse.url, opts.clickhouse.database);
  // A progress line a second per topic scanned, where a topic holds enough to wait for.
  let progress: { topic: string; line: ProgressLine } | undefined;
  const onProgress = (topic: string, read: number, total: number) => {
    if (total < 10_000) return;
    if (progress?.topic !== topic) progress = { topic, line: new ProgressLine(total, 'records') };
    const line = progress.line.update(read);
    if (line !== undefined) process.stderr.write(`audit: ${topic}: ${line}\n`);
  };
  try {
    const r = await auditRun({
      kafka: createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-audit`, logger }),
      serde: new AvroSerde(opts.runtime.registryUrl),
      topics: pipelineTopics(opts.prefix),
      clickhouse: ch,
      runId: values.run,
      sample,
      onProgress,
    });
    if (values.json) console.log(JSON.stringify(r));
    else {
      console.log(`audit: run ${r.runId}: ${r.texts} texts → ${r.converted} converted, ${r.raw} kept raw, ${r.deadLettered} dead-lettered; ${r.lost} lost${r.lost ? ` (e.g. ${r.lostIds.join(', ')})` : ''}; ${r.ingestedTwice} ingested twice`);
      console.log(`  mixed: ${r.mixed.records} records (${r.mixed.copies} read, ${r.mixed.duplicated} duplicated${r.mixed.duplicated ? `: ${r.mixed.duplicatedIds.join(', ')}` : ''}); ${r.mixed.domainTexts} texts mixed, ${r.mixed.missingFromMix} missing from the mix`);
      console.log(`  metrics: ${r.metrics.events}/${r.metrics.expected} events (${r.metrics.missingEvents} missing); ClickHouse ${r.metrics.clickhouseRows} rows (${r.metrics.missingRows} missing, ${r.metrics.extraRows} extra)`);
      console.log(`  ${r.ok ? 'ok' : 'NOT ok'} (${r.seconds} s)`);
    }
    if (r.texts === 0) process.stderr.write(`audit: no raw texts of run "${values.run}" under prefix "${opts.prefix}"\n`);
    return r.ok && r.texts > 0 ? 0 : 1;
  } finally {
    await ch.close();
  }
}
