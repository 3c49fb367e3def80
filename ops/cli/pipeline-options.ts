import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { isPreset, type PresetName } from '../../processors/pipeline/run-config.ts';
import { STAGES, TOPOLOGIES, type StageName, type Topology } from '../../processors/pipeline/pipeline-topics.ts';
import type { PipelineOptions } from '../pipeline/start-pipeline.ts';
import type { RunSettings } from '../../connectors/ingest/run-plan.ts';
import { intOption, UsageError } from './args.ts';
import { flagOrSetting, setting } from '../../processors/runtime/settings.ts';

/** Flags shared by `ipt pipeline up|run`, `ipt serve` and `ipt rounds`. */
export const PIPELINE_FLAGS = {
  'llm-url': { type: 'string' },
  model: { type: 'string' },
  concurrency: { type: 'string' },
  retries: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'llm-deadline-ms': { type: 'string' },
  tokenizer: { type: 'string' },
  prefix: { type: 'string' },
  partitions: { type: 'string' },
  stages: { type: 'string' },
  topology: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
} as const;

export const RUN_FLAGS = {
  run: { type: 'string' },
  rounds: { type: 'string' },
  preset: { type: 'string' },
  'convert-fraction': { type: 'string' },
  'general-weight': { type: 'string' },
  'general-restart': { type: 'boolean' },
  'max-model-len': { type: 'string' },
  'length-estimate': { type: 'string' },
  seed: { type: 'string' },
} as const;

type Values = Record<string, string | boolean | undefined>;

function num(cmd: string, name: string, raw: unknown, fallback: number, min: number, max = Infinity): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${cmd}: --${name} must be a number in [${min}, ${max}] (got ${raw})`);
  return n;
}

/** Pipeline settings from flags and environment (IPT_LLM_URL, IPT_CLICKHOUSE_URL, IPT_CLICKHOUSE_DB, IPT_TOPIC_PREFIX, IPT_TOPOLOGY), validated once. */
export function pipelineOptions(cmd: string, v: Values, env: NodeJS.ProcessEnv = process.env): Omit<PipelineOptions, 'logger'> {
  const runtime = runtimeConfig(env);
  const endpoints = flagOrSetting('IPT_LLM_URL', v['llm-url'] as string | undefined, 'llm-url', env);
  const stages = v.stages === undefined ? undefined : (String(v.stages).split(',').map((s) => s.trim()) as StageName[]);
  for (const s of stages ?? []) if (!STAGES.includes(s)) throw new UsageError(`${cmd}: unknown stage "${s}" (stages: ${STAGES.join(', ')})`);
  const topology: Topology = flagOrSetting('IPT_TOPOLOGY', v.topology as string | undefined, 'topology', env);
  const clickhouseUrl = setting('IPT_CLICKHOUSE_URL', env);
  const database = setting('IPT_CLICKHOUSE_DB', env);
  return {
    runtime,
    prefix: flagOrSetting('IPT_TOPIC_PREFIX', v.prefix as string | undefined, 'prefix', env),
    partitions: intOption(cmd, 'partitions', v.partitions as string | undefined, 4),
    stages,
    topology,
    llm: {
      endpoints,
      concurrency: intOption(cmd, 'concurrency', v.concurrency as string | undefined, 32),
      retries: intOption(cmd, 'retries', v.retries as string | undefined, 4, 0),
      timeoutMs: intOption(cmd, 'timeout-ms', v['timeout-ms'] as string | undefined, 120_000),
      deadlineMs: flagOrSetting('IPT_LLM_DEADLINE_MS', v['llm-deadline-ms'] as string | undefined, 'llm-deadline-ms', env),
      tokenizer: v.tokenizer as string | undefined,
    },
    evaluation: {
      model: (v.model as string | undefined) ?? 'instruction-pretrain/instruction-synthesizer',
      maxNewTokens: intOption(cmd, 'max-new-tokens', v['max-new-tokens'] as string | undefined, 400),
      temperature: num(cmd, 'temperature', v.temperature, 0, 0),
    },
    clickhouse: { url: clickhouseUrl, database },
  };
}

export function runSettings(cmd: string, v: Values): Omit<RunSettings, 'runId'> & { runId?: string } {
  const preset = (v.preset as string | undefined) ?? 'none';
  if (!isPreset(preset)) throw new UsageError(`${cmd}: --preset must be from-scratch or domain-adaptive (got ${preset})`);
  const lengthEstimate = (v['length-estimate'] as string | undefined) ?? 'tokens';
  if (lengthEstimate !== 'words' && lengthEstimate !== 'tokens') throw new UsageError(`${cmd}: --length-estimate must be words or tokens (got ${lengthEstimate})`);
  const maxModelLen = intOption(cmd, 'max-model-len', v['max-model-len'] as string | undefined, 4096);
  const maxNewTokens = intOption(cmd, 'max-new-tokens', v['max-new-tokens'] as string | undefined, 400);
  if (maxNewTokens >= maxModelLen) throw new UsageError(`${cmd}: --max-new-tokens must be smaller than --max-model-len`);
  return {
    runId: v.run as string | undefined,
    preset: preset as PresetName,
    rounds: v.rounds === undefined ? undefined : intOption(cmd, 'rounds', v.rounds as string, 1),
    convertFraction: v['convert-fraction'] === undefined ? undefined : num(cmd, 'convert-fraction', v['convert-fraction'], 1, 0, 1),
    generalWeight: v['general-weight'] === undefined ? undefined : num(cmd, 'general-weight', v['general-weight'], 0, 0, 0.999),
    generalOnExhausted: v['general-restart'] ? 'restart' : 'leave',
    seed: intOption(cmd, 'seed', v.seed as string | undefined, 0, 0),
    model: (v.model as string | undefined) ?? 'instruction-pretrain/instruction-synthesizer',
    maxModelLen,
    maxNewTokens,
    lengthEstimate,
    temperature: num(cmd, 'temperature', v.temperature, 0, 0),
  };
}
