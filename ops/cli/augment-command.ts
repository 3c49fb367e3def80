import { runAugment } from '../jobs/augment.ts';
import { intOption, parse, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('augment');

export async function augmentCommand(argv: string[]): Promise<number> {
  const { values } = parse('augment', argv, {
    input: { type: 'string' },
    output: { type: 'string' },
    'collections-output': { type: 'string' },
    rounds: { type: 'string' },
    'llm-url': { type: 'string' },
    model: { type: 'string' },
    'max-model-len': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'length-estimate': { type: 'string' },
    tokenizer: { type: 'string' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    retries: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'deadline-ms': { type: 'string' },
    guided: { type: 'string' },
    'batch-prompts': { type: 'string' },
    'allow-rejects': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (!values.input || !values.output || !values['llm-url']) throw new UsageError(`augment: --input, --output and --llm-url are required\n${USAGE}`);
  const lengthEstimate = values['length-estimate'] ?? 'tokens';
  if (lengthEstimate !== 'words' && lengthEstimate !== 'tokens') throw new UsageError(`augment: --length-estimate must be words or tokens (got ${lengthEstimate})`);
  const guided = values.guided ?? 'off';
  if (guided !== 'off' && guided !== 'gbnf' && guided !== 'regex') throw new UsageError(`augment: --guided must be off, gbnf or regex (got ${guided})`);
  const temperature = Number(values.temperature ?? 0);
  if (!Number.isFinite(temperature) || temperature < 0) throw new UsageError(`augment: --temperature must be a number ≥ 0 (got ${values.temperature})`);
  const maxModelLen = intOption('augment', 'max-model-len', values['max-model-len'], 4096);
  const maxNewTokens = intOption('augment', 'max-new-tokens', values['max-new-tokens'], 400);
  if (maxNewTokens >= maxModelLen) throw new UsageError('augment: --max-new-tokens must be smaller than --max-model-len');
  const summary = await runAugment({
    input: values.input,
    output: values.output,
    collectionsOutput: values['collections-output'],
    rounds: intOption('augment', 'rounds', values.rounds, 2),
    llmUrl: values['llm-url'],
    model: values.model ?? 'instruction-pretrain/instruction-synthesizer',
    maxModelLen,
    maxNewTokens,
    lengthEstimate,
    tokenizer: values.tokenizer,
    temperature,
    seed: intOption('augment', 'seed', values.seed, 0, 0),
    concurrency: intOption('augment', 'concurrency', values.concurrency, 32),
    retries: intOption('augment', 'retries', values.retries, 4, 0),
    timeoutMs: intOption('augment', 'timeout-ms', values['timeout-ms'], 120_000),
    deadlineMs: intOption('augment', 'deadline-ms', values['deadline-ms'], 600_000),
    guided,
    batchPrompts: intOption('augment', 'batch-prompts', values['batch-prompts'], 1),
    progress: process.stderr.isTTY === true && !values.json,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  if (values.json) console.log(JSON.stringify(summary));
  else {
    console.log(
      `augment: ${summary.textsIn} texts in (${summary.rejectedLines} lines rejected), ${summary.pairsOut} pairs out (${summary.pairsPerText} per text), ` +
        `${summary.parseFailures} outputs without a pair, ${summary.failed.length} synthesis failures, ${summary.tooLong.length} too long, ${summary.emptyTexts} empty; ` +
        `${summary.outputTexts} pre-training texts from ${summary.collections} collections in ${summary.seconds}s`,
    );
    for (const r of summary.rounds) console.log(`  round ${r.round}: ${r.texts} texts, ${r.fewShot} few-shot, ${r.llmCalls} LLM calls, ${r.failed} failed, ${r.pairs} pairs`);
  }
  const problems = summary.rejectedLines + summary.failed.length;
  return problems > 0 && !values['allow-rejects'] ? 1 : 0;
}
