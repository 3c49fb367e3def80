import { setting } from '../../processors/runtime/settings.ts';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { basename } from 'node:path';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { llmExposureWarnings } from '../server/exposure.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('serve-llm');

/** `ipt serve-llm --model FILE.gguf`: the embedded synthesizer as an OpenAI-compatible completions server. */
export async function serveLlmCommand(argv: string[]): Promise<number> {
  // An empty --api-key is refused by its definition: an empty variable is the same as none, an empty flag a mistake.
  const { values } = parseFlags('serve-llm', argv, FLAGS['serve-llm']);
  if (!values.model) throw new UsageError(USAGE);
  // The variable the LLM client sends as its bearer token: a pipeline and the server it talks to share one setting.
  const apiKey = values['api-key'] ?? setting('IPT_LLM_API_KEY');
  const host = values.host;
  const logger = createLogger('ipt-serve-llm', logLevel('warn'));
  const synth = await EmbeddedSynthesizer.load({
    modelPath: values.model,
    parallel: values.parallel,
    contextSize: values['context-size'],
    gpu: values.gpu === 'off' ? false : 'auto',
  });
  const { app, url } = await startEmbeddedServer(synth, {
    port: values.port,
    host,
    modelName: basename(values.model, '.gguf'),
    apiKey,
    onError: (err) => logger.error({ err }, 'completion request failed'),
  });
  for (const w of llmExposureWarnings(host, apiKey !== undefined)) logger.warn({ host }, w);
  process.stderr.write(`serve-llm: ${basename(values.model)} on ${url} (${synth.parallel} sequences × ${synth.contextSize} tokens, gpu: ${synth.gpu || 'none'}, API key: ${apiKey ? 'required' : 'none'})\n`);
  // Closing the server drops its connections, which aborts the completions being decoded for them, so that the
  // model's context is free to dispose.
  const stop = async () => {
    await app.close();
    await synth.dispose();
  };
  const closed = new Promise<void>((resolve) => app.server.once('close', () => resolve()));
  await stopOnSignals([{ name: 'the completions server', stop, done: closed }], logger);
  return 0;
}
