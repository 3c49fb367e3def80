import type { TestProject } from 'vitest/node';
import { locateStack } from '../../ops/stack/locate.ts';
import type { StackEndpoints } from '../../ops/stack/stack-config.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
  }
}

/** Integration tests run against the real stack; if it cannot be reached or started, the run fails here, loudly. */
export default async function setup(project: TestProject): Promise<void> {
  const stack = await locateStack(process.env, (l) => process.stderr.write(`[stack] ${l}\n`));
  project.provide('stack', stack);
}
