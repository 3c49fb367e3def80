import { flagOrSetting } from '../../processors/runtime/settings.ts';
import { createLogger } from '../../processors/runtime/logger.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { startTrainerSink, trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { intOption, parse, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('sink');

/** `ipt sink`: the trainer sink (mixed texts → token batches per rank) until SIGTERM/SIGINT. */
export async function sinkCommand(argv: string[]): Promise<number> {
  const { values } = parse('sink', argv, {
    tokenizer: { type: 'string' },
    'eos-token': { type: 'string' },
    'world-size': { type: 'string' },
    'seq-len': { type: 'string' },
    'batch-size': { type: 'string' },
    prefix: { type: 'string' },
  });
  if (!values.tokenizer || !values['eos-token'] || !values['world-size']) throw new UsageError(`sink: --tokenizer, --eos-token and --world-size are required\n${USAGE}`);
  const cfg = runtimeConfig();
  const logger = createLogger('ipt-sink', cfg.logLevel);
  const metrics = new ProcessorMetrics();
  const prefix = flagOrSetting('IPT_TOPIC_PREFIX', values.prefix, 'prefix');
  const running = await startTrainerSink(
    cfg,
    {
      name: `${prefix}.trainer-sink`,
      ...trainerSinkTopics(prefix),
      tokenizerJson: values.tokenizer,
      eosToken: values['eos-token'],
      seqLen: intOption('sink', 'seq-len', values['seq-len'], 2048),
      batchSize: intOption('sink', 'batch-size', values['batch-size'], 8),
      worldSize: intOption('sink', 'world-size', values['world-size'], 1),
    },
    { logger, metrics },
  );
  const server = cfg.metricsPort !== undefined ? await startOpsServer({ port: cfg.metricsPort, registry: metrics.registry, readiness: [running] }) : undefined;
  await stopOnSignals([running], logger, server);
  return 0;
}
