import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { startOpsServer } from '../../processors/runtime/ops-server.ts';
import { stopOnSignals, watchOnly } from '../../processors/runtime/run-until-signal.ts';
import { startPipeline } from '../pipeline/start-pipeline.ts';
import { runPipeline } from '../jobs/pipeline-run.ts';
import { UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags, readArgv, readFlags } from './flags.ts';
import { pipelineOptions, runSettings } from './pipeline-options.ts';
import { describeTopology, topologyMermaid } from '../../processors/pipeline/describe-topology.ts';

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
  const { values: v } = parseFlags('pipeline describe', argv, FLAGS['pipeline describe']);
  process.stdout.write(`${v.mermaid ? topologyMermaid(v.topology, v.prefix) : describeTopology(v.topology, v.prefix, v.partitions)}\n`);
  return 0;
}

/** All stages (or --stages) in this process against the stack, until SIGTERM/SIGINT. */
async function up(argv: string[]): Promise<number> {
  const { raw } = readArgv('pipeline up', argv, FLAGS['pipeline up']);
  const opts = pipelineOptions('pipeline up', raw);
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
  const { raw } = readArgv('pipeline run', argv, FLAGS['pipeline run']);
  const values = readFlags('pipeline run', raw, FLAGS['pipeline run']);
  if (!values.input) throw new UsageError(`pipeline run: --input is required\n${USAGE}`);
  const opts = pipelineOptions('pipeline run', raw);
  if (opts.llm.endpoints.length === 0 && !values.external) throw new UsageError(`pipeline run: --llm-url (or IPT_LLM_URL) is required\n${USAGE}`);
  const logger = createLogger('ipt-pipeline', logLevel('warn'));
  const summary = await runPipeline({
    input: values.input,
    settings: runSettings('pipeline run', raw),
    general: values.general,
    evaluation: values.evaluation,
    output: values.output,
    pipeline: opts,
    startStages: !values.external,
    timeoutMs: values['run-timeout-ms'],
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
    const j = summary.judge;
    if (j) console.log(`  judge: ${j.judged}/${j.verdicts} pairs judged, ${j.relevant} relevant, ${j.accurate} accurate (\`ipt report\` for the rates with intervals)`);
    for (const d of summary.deadLetters) console.log(`  dead-lettered ${d.id} (${d.stage}): ${d.reason}`);
  }
  return summary.rejected + summary.deadLettered > 0 ? 1 : 0;
}
