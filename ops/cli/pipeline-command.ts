import { flagOrSetting, setting } from '../../processors/runtime/settings.ts';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { stopOnSignals, watchOnly } from '../../processors/runtime/run-until-signal.ts';
import { startPipeline } from '../pipeline/start-pipeline.ts';
import { runPipeline } from '../jobs/pipeline-run.ts';
import { parse, intOption, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { PIPELINE_FLAGS, pipelineOptions, RUN_FLAGS, runSettings } from './pipeline-options.ts';
import { describeTopology, topologyMermaid } from '../../processors/pipeline/describe-topology.ts';
import { TOPOLOGIES, type Topology } from '../../processors/pipeline/pipeline-topics.ts';

const USAGE = usageOf('pipeline');

export async function pipelineCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'up') return up(rest);
  if (sub === 'run') return run(rest);
  if (sub === 'describe') return describe(rest);
  throw new UsageError(USAGE);
}

/** The topology's stages, topics and edges for one cut, as text or as a Mermaid flowchart. Touches no service. */
function describe(argv: string[]): number {
  const { values } = parse('pipeline describe', argv, { topology: { type: 'string' }, prefix: { type: 'string' }, partitions: { type: 'string' }, mermaid: { type: 'boolean' } });
  const topology = flagOrSetting('IPT_TOPOLOGY', values.topology as string | undefined, 'topology');
  if (!Object.hasOwn(TOPOLOGIES, topology)) throw new UsageError(`pipeline describe: --topology must be ${Object.keys(TOPOLOGIES).join(' or ')} (got ${topology})`);
  const prefix = flagOrSetting('IPT_TOPIC_PREFIX', values.prefix as string | undefined, 'prefix');
  const partitions = intOption('pipeline describe', 'partitions', values.partitions as string | undefined, 4);
  process.stdout.write(`${values.mermaid ? topologyMermaid(topology as Topology, prefix) : describeTopology(topology as Topology, prefix, partitions)}\n`);
  return 0;
}

/** All stages (or --stages) in this process against the stack, until SIGTERM/SIGINT. */
async function up(argv: string[]): Promise<number> {
  const { values } = parse('pipeline up', argv, PIPELINE_FLAGS);
  const opts = pipelineOptions('pipeline up', values);
  const logger = createLogger('ipt-pipeline', opts.runtime.logLevel);
  const pipeline = await startPipeline({ ...opts, logger });
  logger.info({ stages: pipeline.processors.map((p) => p.name) }, 'pipeline up');
  const server = opts.runtime.metricsPort !== undefined ? await startOpsServer({ port: opts.runtime.metricsPort, registry: pipeline.metrics.registry, readiness: pipeline.processors }) : undefined;
  // The pipeline stops its stages itself; each stage is watched, so one that stops by itself is named with its error,
  // and so is the pipeline when a table its stages read gave up (it stopped them).
  await stopOnSignals([{ name: 'the pipeline', stop: () => pipeline.stop(), done: pipeline.done }, ...pipeline.processors.map((p) => watchOnly({ name: p.name, done: p.done, get failure() { return p.failure ?? pipeline.failure; } }))], logger, server);
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parse('pipeline run', argv, {
    ...PIPELINE_FLAGS,
    ...RUN_FLAGS,
    input: { type: 'string' },
    general: { type: 'string' },
    evaluation: { type: 'string' },
    output: { type: 'string' },
    external: { type: 'boolean' },
    'timeout-ms': { type: 'string' },
    'run-timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.input) throw new UsageError(`pipeline run: --input is required\n${USAGE}`);
  const opts = pipelineOptions('pipeline run', values);
  if (opts.llm.endpoints.length === 0 && !values.external) throw new UsageError(`pipeline run: --llm-url (or IPT_LLM_URL) is required\n${USAGE}`);
  const logger = createLogger('ipt-pipeline', logLevel('warn'));
  const summary = await runPipeline({
    input: values.input,
    settings: runSettings('pipeline run', values),
    general: values.general,
    evaluation: values.evaluation,
    output: values.output,
    pipeline: opts,
    startStages: !values.external,
    timeoutMs: intOption('pipeline run', 'run-timeout-ms', values['run-timeout-ms'], 1_800_000),
    log: (l) => process.stderr.write(`${l}\n`),
    logger,
  });
  if (values.json) console.log(JSON.stringify(summary));
  else {
    console.log(
      `pipeline: run ${summary.runId}: ${summary.ingested} texts ingested (${summary.rejected} rejected) → ${summary.augmented} augmented, ${summary.raw} kept raw, ` +
        `${summary.deadLettered} dead-lettered; ${summary.pairs} pairs in ${summary.outputTexts} texts; mixed ${summary.mixed.records} (${summary.mixed.general} general, share ${summary.mixed.generalShare}); ` +
        `ClickHouse rows ${summary.metricRows.synthesis} synthesis, ${summary.metricRows.evaluation} evaluation; ${summary.seconds}s`,
    );
    for (const r of summary.perRound) console.log(`  round ${r.round}: ${r.texts} texts, ${r.fewShot} few-shot, ${r.pairs} pairs, ${r.failed} failed, parse success ${r.parseSuccess}`);
    for (const d of summary.deadLetters) console.log(`  dead-lettered ${d.id} (${d.stage}): ${d.reason}`);
  }
  return summary.rejected + summary.deadLettered > 0 ? 1 : 0;
}
