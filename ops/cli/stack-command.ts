import { stackConfig } from '../stack/stack-config.ts';
import { stackDown, stackStatus, stackUp } from '../stack/stack.ts';
import { parse, UsageError } from './args.ts';

export async function stackCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parse('stack', argv, { wipe: { type: 'boolean' }, json: { type: 'boolean' } });
  const cfg = stackConfig();
  const log = (l: string) => process.stderr.write(`${l}\n`);
  switch (positionals[0]) {
    case 'up': {
      const up = await stackUp(cfg, log);
      for (const s of up) console.log(`${s.name.padEnd(16)} up    ${s.endpoint}`);
      return 0;
    }
    case 'down':
      await stackDown(cfg, { wipe: values.wipe }, log);
      return 0;
    case 'status': {
      const st = await stackStatus(cfg);
      if (values.json) console.log(JSON.stringify(st));
      else for (const s of st) console.log(`${s.name.padEnd(16)} ${s.healthy ? 'up  ' : 'DOWN'}  ${s.endpoint}${s.healthy ? '' : `  (log: ${s.log})`}`);
      return st.every((s) => s.healthy) ? 0 : 1;
    }
    default:
      throw new UsageError('usage: ipt stack up | down [--wipe] | status [--json]');
  }
}
