import { createLogger } from '../../processors/runtime/logger.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { startTrainerSink, trainerSinkTopics } from '../../trainers/sink/start-trainer-sink.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('sink');

/** `ipt sink`: the trainer sink (mixed texts → token batches per rank) until SIGTERM/SIGINT. */
export async function sinkCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('sink', argv, FLAGS.sink);
  if (!values.tokenizer || !values['eos-token'] || values['world-size'] === undefined) throw new UsageError(`sink: --tokenizer, --eos-token and --world-size are required\n${USAGE}`);
  const cfg = runtimeConfig();
  const logger = createLogger('ipt-sink', cfg.logLevel);
  const metrics = new ProcessorMetrics();
  const prefix = values.prefix;
  const running = await startTrainerSink(
    cfg,
    {
      name: `${prefix}.trainer-sink`,
      ...trainerSinkTopics(prefix),
      tokenizerJson: values.tokenizer,
      eosToken: values['eos-token'],
      seqLen: values['seq-len'],
      batchSize: values['batch-size'],
      worldSize: values['world-size'],
    },
    { logger, metrics },
  );
  const server = cfg.metricsPort !== undefined ? await startOpsServer({ port: cfg.metricsPort, registry: metrics.registry, readiness: [running] }) : undefined;
  await stopOnSignals([running], logger, server);
  return 0;
}
