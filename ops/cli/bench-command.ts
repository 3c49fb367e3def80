import { loadavg } from 'node:os';
import type { Topology } from '../../processors/pipeline/pipeline-topics.ts';
import { createLogger } from '../../processors/runtime/logger.ts';
import { runtimeConfig } from '../../processors/runtime/runtime-config.ts';
import { endpointsEnv, locateStack } from '../stack/locate.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags, readArgv, type FlagSpecs } from './flags.ts';

const BENCHES = ['runtime', 'synthesis', 'pipeline', 'sink', 'scale', 'memory', 'train'] as const;
const isBench = (w: string | undefined): w is (typeof BENCHES)[number] => (BENCHES as readonly (string | undefined)[]).includes(w);
import { usageOf } from './command-help.ts';

/** `ipt bench <what>`: side-by-side benchmarks that print one JSON line (with --json) of medians and ratios. */
export async function benchCommand(argv: string[]): Promise<number> {
  // Which benchmark: the first positional (read with every benchmark's flags), then its own flags, checked.
  const union = Object.assign({}, ...BENCHES.map((b) => FLAGS[`bench ${b}`])) as FlagSpecs;
  const what = readArgv('bench', argv, union).positionals[0];
  if (!isBench(what)) throw new UsageError(usageOf('bench'));
  const log = (l: string) => process.stderr.write(`${l}\n`);
  switch (what) {
    case 'runtime': {
      const { values } = parseFlags('bench runtime', argv, FLAGS['bench runtime']);
      const loadBefore = loadavg();
      const ep = await locateStack(process.env, log);
      const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
      const { runtimeBench } = await import('../bench/runtime-bench.ts');
      const result = await runtimeBench(cfg, createLogger('ipt-bench', 'warn'), {
        records: values.records,
        runs: values.runs,
        recordBytes: values['record-bytes'],
        log,
      });
      log(`bench runtime: result saved to ${await saveResult('runtime', argv, result, loadBefore)}`);
      print(result, values.json, `runtime ${result.runtimeRecordsPerSec} rec/s vs bare kafkajs ${result.bareRecordsPerSec} rec/s: ratio ${result.ratio} (goal ≥ 0.8)`);
      return 0;
    }
    case 'synthesis': {
      const { synthesisBench } = await import('../bench/synthesis-bench.ts');
      const { installSmallModel } = await import('../stack/models.ts');
      const { stackConfig } = await import('../stack/stack-config.ts');
      const { values } = parseFlags('bench synthesis', argv, FLAGS['bench synthesis']);
      const loadBefore = loadavg();
      // The optional llama.cpp binding, before the model is downloaded for it.
      await (await import('../../connectors/llm/embedded-llama.ts')).loadLlamaCpp();
      const result = await synthesisBench({ modelPath: installSmallModel(stackConfig(), log), log, runs: values.runs });
      log(`bench synthesis: result saved to ${await saveResult('synthesis', argv, result, loadBefore)}`);
      print(
        result,
        values.json,
        `simulated ${result.simulated.ratio} of capacity (goal ≥ 0.95); llamacpp pipeline/direct ${result.llamacpp.ratio} (goal ≥ 0.9); ` +
          `prefix affinity/round-robin ${result.prefixAffinity.ratio} (goal > 1); parse rate ${result.parseRate.unguided} unguided, ${result.parseRate.guided} guided`,
      );
      return 0;
    }
    case 'pipeline': {
      const { values } = parseFlags('bench pipeline', argv, FLAGS['bench pipeline']);
      const loadBefore = loadavg();
      const ep = await locateStack(process.env, log);
      const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
      const { pipelineBench } = await import('../bench/pipeline-bench.ts');
      const result = await pipelineBench(cfg, createLogger('ipt-bench', 'warn'), {
        texts: values.records,
        runs: values.runs,
        textBytes: values['record-bytes'],
        rounds: values.rounds,
        topologies: values.topology === 'both' ? ['fused', 'staged'] : [values.topology],
        log,
      });
      log(`bench pipeline: result saved to ${await saveResult('pipeline', argv, result, loadBefore)}`);
      print(
        result,
        values.json,
        (['fused', 'staged'] as const)
          .filter((t) => result.topologies[t])
          .map((t) => {
            const x = result.topologies[t]!;
            return (
              `${t}: ${x.textsPerSec} texts/s vs identity ${result.identityTextsPerSec} texts/s: ratio ${x.ratio}${t === 'fused' ? ' (goal ≥ 0.5)' : ''}; ` +
              `added latency p50 ${x.latency.p50Ms} ms, p99 ${x.latency.p99Ms} ms at ${x.latency.ratePerSec} texts/s`
            );
          })
          .concat(result.fusedOutputsOnly ? [`fused stage's outputs with none of the work: ${result.fusedOutputsOnly.textsPerSec} texts/s, ratio ${result.fusedOutputsOnly.ratio} (the ceiling for these outputs); the method's work in memory: ${result.fusedOutputsOnly.methodMicrosPerText} µs per text`] : [])
          .join('\n'),
      );
      return 0;
    }
    case 'sink': {
      const { values } = parseFlags('bench sink', argv, FLAGS['bench sink']);
      const loadBefore = loadavg();
      const ep = await locateStack(process.env, log);
      const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
      const { sinkBench } = await import('../bench/sink-bench.ts');
      const { installSmallTokenizer, SMALL_TOKENIZER } = await import('../stack/models.ts');
      const { stackConfig } = await import('../stack/stack-config.ts');
      const result = await sinkBench(cfg, createLogger('ipt-bench', 'warn'), {
        texts: values.records,
        runs: values.runs,
        textBytes: values['record-bytes'],
        tokenizer: installSmallTokenizer(stackConfig(), log),
        eosToken: SMALL_TOKENIZER.eosToken,
        seqLen: 2048,
        batchSize: 8,
        worldSize: 2,
        log,
      });
      log(`bench sink: result saved to ${await saveResult('sink', argv, result, loadBefore)}`);
      print(result, values.json, `sink ${result.sinkTokensPerSec} tokens/s end to end vs bare encode ${result.bareTokensPerSec} tokens/s: ratio ${result.ratio} (goal ≥ 0.7)`);
      return 0;
    }
    case 'train': {
      const loadBefore = loadavg();
      const { trainBench, TRAIN_CONFIGS } = await import('../bench/train-bench.ts');
      const { values } = parseFlags('bench train', argv, FLAGS['bench train']);
      const config = values.config;
      if (!TRAIN_CONFIGS[config]) throw new UsageError(`bench train: --config takes ${Object.keys(TRAIN_CONFIGS).join(', ')} (got ${config})`);
      const peak = values['peak-tflops'];
      const { ranks, steps } = values;
      const ep = await locateStack(process.env, log);
      const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
      const { installTrainerEnv } = await import('../stack/python-env.ts');
      const { stackConfig } = await import('../stack/stack-config.ts');
      const result = await trainBench(cfg, createLogger('ipt-bench', 'warn'), { config, ranks, steps, fsdp: Boolean(values.fsdp), python: installTrainerEnv(stackConfig(), log), peakTflops: peak, log });
      const saved = await saveResult('train', argv, result, loadBefore);
      print(
        { ...result, saved },
        values.json,
        `train ${config} (${(result.model.parameters / 1e6).toFixed(1)}M parameters, ${ranks} rank(s)${result.fsdp ? ', FSDP2' : ''}): ${result.tokensPerSec} tokens/s, ${result.tokensPerSecPerRank} per rank, MFU ${result.mfu ?? 'n/a (no peak known: --peak-tflops)'} (median of steps ${result.warmupSteps + 1}–${steps}); saved to ${saved}`,
      );
      return 0;
    }
    case 'scale': {
      const { values } = parseFlags('bench scale', argv, FLAGS['bench scale']);
      const instances = values.instances;
      const partitions = values.partitions ?? Math.max(4, ...instances);
      if (partitions < Math.max(...instances)) throw new UsageError(`bench scale: --partitions ${partitions} leaves instances idle (${Math.max(...instances)} instances)`);
      const loadBefore = loadavg();
      const ep = await locateStack(process.env, log);
      const cfg = runtimeConfig({ ...process.env, ...endpointsEnv(ep) });
      const { scaleBench } = await import('../bench/scale-bench.ts');
      const result = await scaleBench(cfg, ep, createLogger('ipt-bench', 'warn'), {
        texts: values.records,
        runs: values.runs,
        latencyMs: values['latency-ms'],
        concurrency: values.concurrency,
        instances,
        partitions,
        textBytes: values['record-bytes'],
        log,
      });
      log(`bench scale: result saved to ${await saveResult('scale', argv, result, loadBefore)}`);
      print(result, values.json, scaleTable(result));
      return 0;
    }
    case 'memory': {
      const { memoryCommand } = await import('../bench/memory-command.ts');
      return memoryCommand(argv, parseFlags('bench memory', argv, FLAGS['bench memory']).values, log);
    }
  }
}

function print(result: object, json: boolean | undefined, human: string): void {
  console.log(json ? JSON.stringify(result) : human);
}

/** The scale benchmark's figures as a small table: texts/s and the ratio to the first instance count. */
function scaleTable(r: import('../bench/scale-bench.ts').ScaleBenchResult): string {
  const goals: Record<number, string> = { 2: '≥ 1.9', 4: '≥ 3.5' };
  const rows = r.sides.map(
    (s) =>
      `${String(s.instances).padStart(9)}  ${String(s.textsPerSec).padStart(7)}  ${String(s.perInstanceTextsPerSec).padStart(12)}  ${s.ratio.toFixed(2).padStart(5)}  ${(goals[s.instances] ?? '').padEnd(5)}  ` +
      `${String(s.machineBusy).padStart(12)}  ${s.runs.join(', ')}`,
  );
  return [
    `scale: synthesis stage, ${r.texts} texts, LLM ${r.latencyMs} ms per request, ${r.concurrencyPerInstance} in flight per instance (at most ${r.ceilingPerInstance} texts/s each), ${r.partitions} partitions; medians of ${r.runs} runs`,
    'instances  texts/s  per instance  ratio  goal   machine busy  runs (texts/s)',
    ...rows,
    // Each instance's CPU per text is fixed, so a machine near full makes the larger sides wait for CPU, not the LLM.
    ...(r.sides.some((s) => s.machineBusy > 0.8) ? ['note: the machine was over 80% busy during a side: its figures are CPU-starved; run it again when the machine is quieter'] : []),
  ].join('\n');
}

/** Every benchmark's result is written to bench-results/ (ops/bench/save-result.ts); returns the file's path. */
async function saveResult(name: string, argv: string[], result: object, loadBefore: number[]): Promise<string> {
  const { saveBenchResult } = await import('../bench/save-result.ts');
  return saveBenchResult(name, argv, result, loadBefore);
}
