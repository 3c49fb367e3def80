import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setting } from '../../processors/runtime/settings.ts';

/**
 * What one benchmark side cost this process, from its start to its last output: with IPT_BENCH_SPANS, a line with its
 * process CPU time and how busy its event loop was; with IPT_BENCH_PROFILE=DIR, a CPU profile of the span written as
 * `DIR/<name>.cpuprofile` (Chrome DevTools opens it). Where a side's time goes, in the same minute as its figure.
 */
export async function probeSide(name: string, log: (line: string) => void): Promise<() => Promise<void>> {
  const dir = setting('IPT_BENCH_PROFILE');
  const spans = setting('IPT_BENCH_SPANS');
  let session: Session | undefined;
  if (dir) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const wall0 = performance.now();
  return async () => {
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const wall = performance.now() - wall0;
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      mkdirSync(dir!, { recursive: true });
      writeFileSync(join(dir!, `${name}.cpuprofile`), JSON.stringify(profile));
    }
    if (spans) log(`  ${name}: process CPU ${Math.round((cpu.user + cpu.system) / 1000)} ms over ${Math.round(wall)} ms, event loop ${Math.round(elu.utilization * 100)}% busy`);
  };
}
