// npm's postinstall for instruct-pt: applies the kafkajs patch in patches/ (see processors/runtime/kafkajs-patch.ts)
// with patch-package, to the kafkajs this package resolves: in this repository its own node_modules; where instruct-pt
// is installed as a dependency, wherever npm placed that kafkajs. Plain JavaScript: it runs before any build.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const require = createRequire(import.meta.url);
// The kafkajs this package loads (the app's, hoisted, or a copy nested under this package): patch-package runs in the
// folder whose node_modules holds it.
const app = dirname(dirname(dirname(require.resolve('kafkajs/package.json'))));
const patchPackage = require.resolve('patch-package/index.js');
const r = spawnSync(process.execPath, [patchPackage, '--patch-dir', relative(app, join(root, 'patches')) || 'patches'], { cwd: app, stdio: 'inherit' });
if (r.status !== 0) {
  if (app === root) process.exit(r.status ?? 1);
  // A dependency's install must not fail the app's: without the patch, exactly-once refuses to start and says why.
  process.stderr.write(`instruct-pt: the kafkajs patch was not applied in ${app}; exactly-once processing will refuse to start until it is (npx patch-package --patch-dir ${relative(app, join(root, 'patches'))})\n`);
}
