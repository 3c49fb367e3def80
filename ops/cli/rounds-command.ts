import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { pipelineTopics, STAGES, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { startRounds } from '../jobs/rounds-start.ts';
import { parseReplayFrom, replayTopic } from '../jobs/replay.ts';
import { intOption, parse, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { PIPELINE_FLAGS, pipelineOptions } from './pipeline-options.ts';

const ROUNDS_USAGE = usageOf('rounds');

/** `ipt rounds start`: re-run a run's rounds from N on, from what Kafka holds. */
export async function roundsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'start') throw new UsageError(ROUNDS_USAGE);
  const { values } = parse('rounds start', rest, {
    ...PIPELINE_FLAGS,
    run: { type: 'string' },
    round: { type: 'string' },
    'new-run': { type: 'string' },
    seed: { type: 'string' },
    external: { type: 'boolean' },
    'run-timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.run || values.round === undefined) throw new UsageError(`rounds start: --run and --round are required\n${ROUNDS_USAGE}`);
  const opts = pipelineOptions('rounds start', values);
  const summary = await startRounds(
    { runId: values.run, round: intOption('rounds start', 'round', values.round, 0, 0), newRunId: values['new-run'], seed: values.seed === undefined ? undefined : intOption('rounds start', 'seed', values.seed, 0, 0) },
    { pipeline: opts, startStages: !values.external, timeoutMs: intOption('rounds start', 'run-timeout-ms', values['run-timeout-ms'], 1_800_000), log: (l) => process.stderr.write(`${l}\n`), logger: createLogger('ipt-rounds', logLevel('warn')) },
  );
  console.log(values.json ? JSON.stringify(summary) : `rounds: run ${summary.runId}: ${summary.augmented} texts converted, ${summary.deadLettered} dead-lettered, ${summary.pairs} pairs, ${summary.outputTexts} texts out`);
  return summary.deadLettered > 0 ? 1 : 0;
}

/** `ipt replay`: move the consumer groups that read a topic back to an offset or a time. */
export async function replayCommand(argv: string[]): Promise<number> {
  const { values } = parse('replay', argv, { topic: { type: 'string' }, from: { type: 'string' }, stage: { type: 'string' }, prefix: { type: 'string' }, json: { type: 'boolean' } });
  if (!values.topic || !values.from) throw new UsageError(usageOf('replay'));
  if (values.stage !== undefined && !STAGES.includes(values.stage as StageName)) throw new UsageError(`replay: unknown stage "${values.stage}"`);
  const opts = pipelineOptions('replay', { prefix: values.prefix });
  const logger = createLogger('ipt-replay', opts.runtime.logLevel);
  const kafka = createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-replay`, logger });
  const result = await replayTopic(kafka, pipelineTopics(opts.prefix), values.topic, parseReplayFrom(values.from), values.stage as StageName | undefined);
  if (values.json) console.log(JSON.stringify(result));
  else for (const g of result.groups) console.log(`replay: ${g.group} on ${result.topic} → ${g.partitions.map((p) => `${p.partition}@${p.offset}`).join(' ')}; it re-reads from there when it next runs`);
  return 0;
}
