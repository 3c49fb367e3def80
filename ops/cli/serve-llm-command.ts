import { setting } from '../../processors/runtime/settings.ts';
import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { basename } from 'node:path';
import { createLogger, logLevel } from '../../processors/runtime/logger.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { llmExposureWarnings } from '../server/exposure.ts';
import { intOption, parse, UsageError } from './args.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('serve-llm');

/** `ipt serve-llm --model FILE.gguf`: the embedded synthesizer as an OpenAI-compatible completions server. */
export async function serveLlmCommand(argv: string[]): Promise<number> {
  const { values } = parse('serve-llm', argv, {
    model: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    parallel: { type: 'string' },
    'context-size': { type: 'string' },
    gpu: { type: 'string' },
    'api-key': { type: 'string' },
  });
  if (!values.model) throw new UsageError(USAGE);
  if (values.gpu !== undefined && values.gpu !== 'auto' && values.gpu !== 'off') throw new UsageError('serve-llm: --gpu must be auto or off');
  // An empty variable is the same as none; an empty flag is a mistake.
  if (values['api-key'] === '') throw new UsageError(`serve-llm: --api-key is empty\n${USAGE}`);
  // The variable the LLM client sends as its bearer token: a pipeline and the server it talks to share one setting.
  const apiKey = values['api-key'] ?? setting('IPT_LLM_API_KEY');
  const host = values.host ?? '127.0.0.1';
  const logger = createLogger('ipt-serve-llm', logLevel('warn'));
  const synth = await EmbeddedSynthesizer.load({
    modelPath: values.model,
    parallel: intOption('serve-llm', 'parallel', values.parallel, 4),
    contextSize: intOption('serve-llm', 'context-size', values['context-size'], 4096),
    gpu: values.gpu === 'off' ? false : 'auto',
  });
  const { app, url } = await startEmbeddedServer(synth, {
    port: intOption('serve-llm', 'port', values.port, 8000, 0),
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
