import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

// Linux reports process times in clock ticks of 1/100 s (USER_HZ) on every common architecture.
const TICK_MS = 10;

/** CPU time (user + system, ms) a process has used so far, from /proc; 0 where it cannot be read. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** The machine's CPU time so far, busy and total (ms over all cores), to tell a CPU-starved measurement. */
export function machineCpuMs(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}
