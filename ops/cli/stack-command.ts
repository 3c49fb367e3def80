import { stackConfig } from '../stack/stack-config.ts';
import { stackDown, stackStatus, stackUp, type ServiceStatus } from '../stack/stack.ts';
import { clientEnvPath } from '../stack/cluster-env.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { readArgv, readFlags } from './flags.ts';
import { usageOf } from './command-help.ts';

const USAGE = usageOf('stack');

export async function stackCommand(argv: string[]): Promise<number> {
  const { raw, positionals } = readArgv('stack', argv, FLAGS.stack);
  const values = readFlags('stack', raw, FLAGS.stack);
  // Flags are the environment variables by another name: both go through the same definitions.
  const env = { ...process.env };
  if (values.brokers !== undefined) env.IPT_STACK_BROKERS = String(values.brokers);
  if (values.secure) env.IPT_STACK_SECURE = 'true';
  let cfg;
  try {
    cfg = stackConfig(env);
  } catch (err) {
    throw new UsageError(`stack: ${(err as Error).message}`);
  }
  const log = (l: string) => process.stderr.write(`${l}\n`);
  switch (positionals[0]) {
    case 'up': {
      const up = await stackUp(cfg, log);
      for (const s of up) console.log(row(s));
      if (cfg.secure && cfg.services.includes('kafka')) console.log(`client settings: ${clientEnvPath(cfg, 'admin')} (admin), ${clientEnvPath(cfg, 'app')} (ipt-app)`);
      return 0;
    }
    case 'down':
      await stackDown(cfg, { wipe: values.wipe }, log);
      return 0;
    case 'status': {
      const st = await stackStatus(cfg);
      if (values.json) console.log(JSON.stringify(st));
      else for (const s of st) console.log(row(s));
      return st.every((s) => s.healthy) ? 0 : 1;
    }
    default:
      throw new UsageError(USAGE);
  }
}

function row(s: ServiceStatus): string {
  const state = s.healthy ? 'up  ' : 'DOWN';
  const pid = s.pid !== undefined ? `  pid ${s.pid}` : '';
  const note = s.note ? `  [${s.note}]` : '';
  return `${s.name.padEnd(16)} ${state}  ${s.endpoint}${pid}${note}${s.healthy ? '' : `  (log: ${s.log})`}`;
}
