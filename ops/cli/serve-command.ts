import { randomBytes } from 'node:crypto';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { stopOnSignals, watchOnly } from '../../processors/runtime/run-until-signal.ts';
import { serve } from '../server/serve.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { pipelineOptions, runSettings } from './pipeline-options.ts';

/** `ipt serve`: health, metrics, HTTP ingest, round and replay control, and the live dashboard. */
export async function serveCommand(argv: string[]): Promise<number> {
  const { raw } = readArgv('serve', argv, FLAGS.serve);
  const values = readFlags('serve', raw, FLAGS.serve);
  const logger = createLogger('ipt-serve', logLevel('info'));
  // --token or IPT_API_TOKEN, at least 16 characters (their one definition checks it).
  let token = values.token;
  const tokenGenerated = !token;
  if (!token) {
    token = randomBytes(24).toString('base64url');
    logger.warn('no --token or IPT_API_TOKEN: using a random token for this process (printed on stderr)');
    process.stderr.write(`ipt serve: API token ${token}\n`);
  }
  const pipeline = pipelineOptions('serve', raw);
  const { runId: _, ...runDefaults } = runSettings('serve', raw);
  const served = await serve({
    port: values.port,
    host: values.host,
    token,
    tokenGenerated,
    pipeline,
    withPipeline: values['with-pipeline'] === true,
    limits: {
      maxRecords: values['max-records'],
      maxTextBytes: values['max-text-bytes'],
      bodyBytes: values['body-bytes'],
    },
    lagIntervalMs: values['lag-interval-ms'],
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
