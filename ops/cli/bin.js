#!/usr/bin/env node
// The development entry point: runs the TypeScript CLI from the sources, with no build step (the installed `ipt` is
// the compiled dist/ops/cli/main.js). tsx's loader is registered in this process and
// the CLI imported here, rather than run in a child, so that this pid is the one doing the work: a SIGTERM sent to it
// (systemd, Docker, Kubernetes) reaches the command's graceful shutdown instead of killing a wrapper and orphaning
// the work.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// The package's own compiler settings, whatever directory `ipt` is run from.
const tsconfig = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
register({ tsconfig: existsSync(tsconfig) ? tsconfig : undefined });
await import('./main.ts');
