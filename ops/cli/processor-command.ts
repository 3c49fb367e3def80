import { identityProcessor } from '../../processors/identity/identity-processor.ts';
import { createLogger } from '../../processors/runtime/logger.ts';
import { ProcessorMetrics } from '../../processors/runtime/metrics.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { startProcessor } from '../../processors/runtime/run-processor.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

/** `ipt processor <kind> …`: one processor in this process, until SIGTERM/SIGINT. */
export async function processorCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseFlags('processor', argv, FLAGS.processor);
  const kind = positionals[0];
  if (kind !== 'identity') throw new UsageError(usageOf('processor'));
  if (!values.input || !values.output) throw new UsageError('processor identity: --input and --output are required');
  const cfg = runtimeConfig();
  const logger = createLogger('ipt-processor', cfg.logLevel);
  const metrics = new ProcessorMetrics();
  const spec = identityProcessor({ name: values.name, input: values.input, output: values.output, partitions: values.partitions });
  const running = await startProcessor(spec, cfg, { metrics, logger });
  const server = cfg.metricsPort !== undefined ? await startOpsServer({ port: cfg.metricsPort, registry: metrics.registry, readiness: [running] }) : undefined;
  await stopOnSignals([running], logger, server);
  return 0;
}
