import { runAugment } from '../jobs/augment.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('augment');

export async function augmentCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('augment', argv, FLAGS.augment);
  if (!values.input || !values.output || !values['llm-url']) throw new UsageError(`augment: --input, --output and --llm-url are required\n${USAGE}`);
  if (values['max-new-tokens'] >= values['max-model-len']) throw new UsageError('augment: --max-new-tokens must be smaller than --max-model-len');
  const summary = await runAugment({
    input: values.input,
    output: values.output,
    collectionsOutput: values['collections-output'],
    rounds: values.rounds,
    llmUrl: values['llm-url'],
    model: values.model,
    maxModelLen: values['max-model-len'],
    maxNewTokens: values['max-new-tokens'],
    lengthEstimate: values['length-estimate'],
    tokenizer: values.tokenizer,
    temperature: values.temperature,
    seed: values.seed,
    concurrency: values.concurrency,
    retries: values.retries,
    timeoutMs: values['timeout-ms'],
    deadlineMs: values['deadline-ms'],
    guided: values.guided,
    batchPrompts: values['batch-prompts'],
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
