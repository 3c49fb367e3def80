import { EmbeddedSynthesizer } from '../../connectors/llm/embedded-llama.ts';
import { startEmbeddedServer } from '../../connectors/llm/embedded-server.ts';
import { basename } from 'node:path';
import { createLogger } from '../../processors/runtime/logger.ts';
import { stopOnSignals } from '../../processors/runtime/run-until-signal.ts';
import { intOption, parse, UsageError } from './args.ts';

/** `ipt serve-llm --model FILE.gguf`: the embedded synthesizer as an OpenAI-compatible completions server. */
export async function serveLlmCommand(argv: string[]): Promise<number> {
  const { values } = parse('serve-llm', argv, {
    model: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    parallel: { type: 'string' },
    'context-size': { type: 'string' },
    gpu: { type: 'string' },
  });
  if (!values.model) throw new UsageError('usage: ipt serve-llm --model FILE.gguf [--port P=8000] [--host H=127.0.0.1] [--parallel N=4] [--context-size N=4096] [--gpu auto|off]');
  if (values.gpu !== undefined && values.gpu !== 'auto' && values.gpu !== 'off') throw new UsageError('serve-llm: --gpu must be auto or off');
  const synth = await EmbeddedSynthesizer.load({
    modelPath: values.model,
    parallel: intOption('serve-llm', 'parallel', values.parallel, 4),
    contextSize: intOption('serve-llm', 'context-size', values['context-size'], 4096),
    gpu: values.gpu === 'off' ? false : 'auto',
  });
  const { app, url } = await startEmbeddedServer(synth, { port: intOption('serve-llm', 'port', values.port, 8000, 0), host: values.host, modelName: basename(values.model, '.gguf') });
  process.stderr.write(`serve-llm: ${basename(values.model)} on ${url} (${synth.parallel} sequences × ${synth.contextSize} tokens, gpu: ${synth.gpu || 'none'})\n`);
  const logger = createLogger('ipt-serve-llm', process.env.IPT_LOG_LEVEL ?? 'warn');
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
