import { loadavg } from 'node:os';
import { createLogger } from '../../processors/runtime/logger.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { endpointsEnv, locateStack } from '../stack/locate.ts';
import type { FLAGS } from '../cli/command-flags.ts';
import type { FlagValues } from '../cli/flags.ts';
import { memoryBench, memoryTable } from './memory-bench.ts';
import { saveBenchResult } from './save-result.ts';

type Values = FlagValues<(typeof FLAGS)['bench memory']>;

/** `ipt bench memory`: peak memory of `pipeline run` and of the stage process by corpus size; saved under bench-results/. */
export async function memoryCommand(argv: string[], values: Values, log: (l: string) => void): Promise<number> {
  const loadBefore = loadavg();
  const texts = values.texts;
  const topology = values.topology;
  const ep = await locateStack(process.env, log);
  const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
  const result = await memoryBench(cfg, ep, createLogger('ipt-bench', 'warn'), {
    texts,
    topology,
    rounds: values.rounds,
    partitions: values.partitions,
    concurrency: values.concurrency,
    runTimeoutMs: values['run-timeout-ms'],
    log,
  });
  log(`bench memory: result saved to ${saveBenchResult('memory', argv, result, loadBefore)}`);
  console.log(values.json ? JSON.stringify(result) : memoryTable(result));
  return result.sizes.some((s) => s.error) ? 1 : 0;
}
