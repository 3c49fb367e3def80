import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';

// V8 hands out its full collector only when asked at start-up; asked here, a context made afterwards sees it.
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

/**
 * Between two measured sides of a benchmark run in one process: a full collection, so no side pays for the garbage
 * the one before left, and a pause for the broker's own work after the previous side's writes.
 */
export async function settleBetweenSides(ms = 2000): Promise<void> {
  fullGc();
  await sleep(ms);
}
