import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { PIPELINE_FLAGS, RUN_FLAGS } from './command-flags.ts';
import { readFlags, type RawFlags } from './flags.ts';
import type { PipelineOptions } from '../pipeline/start-pipeline.ts';
import type { RunSettings } from '../../connectors/ingest/run-plan.ts';
import { UsageError } from './args.ts';
import { setting } from '../../processors/runtime/settings.ts';
import { stageNode } from '../../processors/pipeline/topology.ts';

/** The flags of the pipeline and of a run (ops/cli/command-flags.ts), for commands that take them. */

/** Pipeline settings from flags (as given: strings) and the environment, validated once by their definitions. */
export function pipelineOptions(cmd: string, raw: RawFlags, env: NodeJS.ProcessEnv = process.env): Omit<PipelineOptions, 'logger'> {
  const runtime = runtimeConfig(env);
  const v = readFlags(cmd, raw, PIPELINE_FLAGS, env);
  if (v.stages?.includes('judge') && v['judge-url'].length === 0) throw new UsageError(`${cmd}: --stages judge needs ${stageNode('judge').configured}`);
  return {
    runtime,
    prefix: v.prefix,
    partitions: v.partitions,
    stages: v.stages,
    topology: v.topology,
    llm: {
      endpoints: v['llm-url'],
      concurrency: v.concurrency,
      retries: v.retries,
      timeoutMs: v['timeout-ms'],
      deadlineMs: v['llm-deadline-ms'],
      tokenizer: v.tokenizer,
    },
    evaluation: {
      model: v.model,
      maxNewTokens: v['max-new-tokens'],
      temperature: v.temperature,
    },
    clickhouse: { url: setting('IPT_CLICKHOUSE_URL', env), database: setting('IPT_CLICKHOUSE_DB', env) },
    ...(v['judge-url'].length > 0 ? { judge: { endpoints: v['judge-url'], model: v['judge-model'], guided: v['judge-guided'], perRound: v['judge-per-round'] } } : {}),
  };
}

/** A run's settings from flags (as given), validated by their definitions. */
export function runSettings(cmd: string, raw: RawFlags): Omit<RunSettings, 'runId'> & { runId?: string } {
  const v = readFlags(cmd, raw, { ...RUN_FLAGS, model: PIPELINE_FLAGS.model, 'max-new-tokens': PIPELINE_FLAGS['max-new-tokens'], temperature: PIPELINE_FLAGS.temperature });
  if (v['max-new-tokens'] >= v['max-model-len']) throw new UsageError(`${cmd}: --max-new-tokens must be smaller than --max-model-len`);
  return {
    runId: v.run,
    preset: v.preset,
    rounds: v.rounds,
    convertFraction: v['convert-fraction'],
    generalWeight: v['general-weight'],
    generalOnExhausted: v['general-restart'] ? 'restart' : 'leave',
    seed: v.seed,
    model: v.model,
    maxModelLen: v['max-model-len'],
    maxNewTokens: v['max-new-tokens'],
    lengthEstimate: v['length-estimate'],
    temperature: v.temperature,
  };
}
