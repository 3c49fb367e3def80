import { parse } from './args.ts';
import { envTablesMarkdown, envTablesText } from '../config/env-vars.ts';

/** `ipt env [--markdown]`: every environment variable instruct-pt reads, its default and what it does. */
export async function envCommand(argv: string[]): Promise<number> {
  const { values } = parse('env', argv, { markdown: { type: 'boolean' } });
  process.stdout.write(values.markdown ? envTablesMarkdown() : envTablesText());
  return 0;
}
