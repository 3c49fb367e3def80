import { loadavg } from 'node:os';
import { createLogger } from '../../processors/runtime/logger.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { endpointsEnv, locateStack } from '../stack/locate.ts';
import { intOption, UsageError } from '../cli/args.ts';
import { memoryBench, memoryTable } from './memory-bench.ts';
import { saveBenchResult } from './save-result.ts';

type Values = Record<string, string | boolean | undefined>;

export const MEMORY_USAGE = 'ipt bench memory [--json] [--texts 10000,100000,1000000] [--topology fused|staged] [--rounds 2] [--partitions 4] [--concurrency 64] [--run-timeout-ms 1800000]';

/** `ipt bench memory`: peak memory of `pipeline run` and of the stage process by corpus size; saved under bench-results/. */
export async function memoryCommand(argv: string[], values: Values, log: (l: string) => void): Promise<number> {
  const loadBefore = loadavg();
  const texts = sizes(values.texts as string | undefined);
  const topology = (values.topology as string | undefined) ?? 'fused';
  if (topology !== 'fused' && topology !== 'staged') throw new UsageError(`bench memory: --topology must be fused or staged (got ${topology})\nusage: ${MEMORY_USAGE}`);
  const ep = await locateStack(process.env, log);
  const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
  const result = await memoryBench(cfg, ep, createLogger('ipt-bench', 'warn'), {
    texts,
    topology,
    rounds: intOption('bench', 'rounds', values.rounds as string | undefined, 2),
    partitions: intOption('bench', 'partitions', values.partitions as string | undefined, 4),
    concurrency: intOption('bench', 'concurrency', values.concurrency as string | undefined, 64),
    runTimeoutMs: intOption('bench', 'run-timeout-ms', values['run-timeout-ms'] as string | undefined, 1_800_000),
    log,
  });
  log(`bench memory: result saved to ${saveBenchResult('memory', argv, result, loadBefore)}`);
  console.log(values.json ? JSON.stringify(result) : memoryTable(result));
  return result.sizes.some((s) => s.error) ? 1 : 0;
}

function sizes(raw: string | undefined): number[] {
  if (raw === undefined) return [10_000, 100_000, 1_000_000];
  const ns = raw.split(',').map((x) => Number(x.trim()));
  if (ns.length === 0 || ns.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`bench memory: --texts must be whole numbers ≥ 1, comma-separated (got ${raw})`);
  return ns;
}
