import { setting } from '../../processors/runtime/settings.ts';
import { randomBytes } from 'node:crypto';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { stopOnSignals, watchOnly } from '../../processors/runtime/run-until-signal.ts';
import { serve } from '../server/serve.ts';
import { intOption, parse, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { PIPELINE_FLAGS, pipelineOptions, RUN_FLAGS, runSettings } from './pipeline-options.ts';

const USAGE = usageOf('serve');

/** `ipt serve`: health, metrics, HTTP ingest, round and replay control, and the live dashboard. */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse('serve', argv, {
    ...PIPELINE_FLAGS,
    ...RUN_FLAGS,
    port: { type: 'string' },
    host: { type: 'string' },
    token: { type: 'string' },
    'with-pipeline': { type: 'boolean' },
    'max-records': { type: 'string' },
    'max-text-bytes': { type: 'string' },
    'body-bytes': { type: 'string' },
    'lag-interval-ms': { type: 'string' },
  });
  const logger = createLogger('ipt-serve', logLevel('info'));
  let token = values.token ?? setting('IPT_API_TOKEN');
  const tokenGenerated = !token;
  if (token !== undefined && token.length < 16) throw new UsageError(`serve: the API token must be at least 16 characters\n${USAGE}`);
  if (!token) {
    token = randomBytes(24).toString('base64url');
    logger.warn('no --token or IPT_API_TOKEN: using a random token for this process (printed on stderr)');
    process.stderr.write(`ipt serve: API token ${token}\n`);
  }
  const pipeline = pipelineOptions('serve', values);
  const { runId: _, ...runDefaults } = runSettings('serve', values);
  const served = await serve({
    port: intOption('serve', 'port', values.port, 8080, 0),
    host: values.host ?? '127.0.0.1',
    token,
    tokenGenerated,
    pipeline,
    withPipeline: values['with-pipeline'] === true,
    limits: {
      maxRecords: intOption('serve', 'max-records', values['max-records'], 10_000),
      maxTextBytes: intOption('serve', 'max-text-bytes', values['max-text-bytes'], 1 << 20),
      bodyBytes: intOption('serve', 'body-bytes', values['body-bytes'], 64 << 20),
    },
    lagIntervalMs: intOption('serve', 'lag-interval-ms', values['lag-interval-ms'], 10_000),
    runDefaults,
    logger,
  });
  logger.info({ url: served.url, dashboard: `${served.url}/`, pipeline: values['with-pipeline'] === true }, 'serving');
  process.stderr.write(`ipt serve: ${served.url}/ (dashboard), POST ${served.url}/v1/runs/:run/texts (ingest)\n`);
  // The server stops its in-process stages itself; they are watched so that one stopping by itself ends the process.
  const p = served.pipeline;
  const stages = p ? [{ name: 'the pipeline', stop: () => p.done.then(() => undefined), done: p.done }, ...p.processors.map((s) => watchOnly({ name: s.name, done: s.done, get failure() { return s.failure ?? p.failure; } }))] : [];
  await stopOnSignals([{ name: 'the server', stop: () => served.close(), done: served.done }, ...stages], logger);
  return 0;
}
