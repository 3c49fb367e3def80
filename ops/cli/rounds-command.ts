import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { createKafka } from '../../processors/runtime/kafka-client.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { startRounds } from '../jobs/rounds-start.ts';
import { parseReplayFrom, replayTopic } from '../jobs/replay.ts';
import { UsageError } from './args.ts';
import { usageOf } from './command-help.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { pipelineOptions } from './pipeline-options.ts';

const ROUNDS_USAGE = usageOf('rounds');

/** `ipt rounds start`: re-run a run's rounds from N on, from what Kafka holds. */
export async function roundsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'start') throw new UsageError(ROUNDS_USAGE);
  const { raw } = readArgv('rounds start', rest, FLAGS['rounds start']);
  const values = readFlags('rounds start', raw, FLAGS['rounds start']);
  if (!values.run || values.round === undefined) throw new UsageError(`rounds start: --run and --round are required\n${ROUNDS_USAGE}`);
  const opts = pipelineOptions('rounds start', raw);
  const summary = await startRounds(
    { runId: values.run, round: values.round, newRunId: values['new-run'], seed: values.seed },
    { pipeline: opts, startStages: !values.external, timeoutMs: values['run-timeout-ms'], log: (l) => process.stderr.write(`${l}\n`), logger: createLogger('ipt-rounds', logLevel('warn')) },
  );
  console.log(values.json ? JSON.stringify(summary) : `rounds: run ${summary.runId}: ${summary.augmented} texts converted, ${summary.deadLettered} dead-lettered, ${summary.pairs} pairs, ${summary.outputTexts} texts out`);
  return summary.deadLettered > 0 ? 1 : 0;
}

/** `ipt replay`: move the consumer groups that read a topic back to an offset or a time. */
export async function replayCommand(argv: string[]): Promise<number> {
  const { raw } = readArgv('replay', argv, FLAGS.replay);
  const values = readFlags('replay', raw, FLAGS.replay);
  if (!values.topic || !values.from) throw new UsageError(usageOf('replay'));
  const opts = pipelineOptions('replay', { prefix: raw.prefix });
  const logger = createLogger('ipt-replay', opts.runtime.logLevel);
  const kafka = createKafka({ brokers: opts.runtime.brokers, security: opts.runtime.security, clientId: `${opts.runtime.clientId}-replay`, logger });
  const result = await replayTopic(kafka, pipelineTopics(opts.prefix), values.topic, parseReplayFrom(values.from), values.stage);
  if (values.json) console.log(JSON.stringify(result));
  else for (const g of result.groups) console.log(`replay: ${g.group} on ${result.topic} → ${g.partitions.map((p) => `${p.partition}@${p.offset}`).join(' ')}; it re-reads from there when it next runs`);
  return 0;
}
