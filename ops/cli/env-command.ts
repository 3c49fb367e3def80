import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';
import { envTablesMarkdown, envTablesText } from '../config/env-vars.ts';

/** `ipt env [--markdown]`: every environment variable instruct-pt reads, its default and what it does. */
export async function envCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('env', argv, FLAGS.env);
  process.stdout.write(values.markdown ? envTablesMarkdown() : envTablesText());
  return 0;
}
