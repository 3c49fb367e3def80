import { setting } from '../../processors/runtime/settings.ts';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';

/**
 * Loaded with `--import` into a process the memory benchmark starts: samples process.memoryUsage() every 100 ms and
 * writes the peaks, with the kernel's own peak RSS (VmHWM), to the file IPT_MEMORY_PROBE names, every second and at
 * exit. A file, not a metrics endpoint, so `pipeline run` (which serves none) is measured the same way as the stages.
 */
export interface MemoryPeaks {
  /** The kernel's high-water mark of resident memory (/proc/self/status VmHWM): the process's true peak RSS. */
  vmHwmBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** The largest heap in use seen just after a full collection: what the process holds live, without its garbage. */
  heapAfterFullGcBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  samples: number;
  /** Resident memory and heap in use at each whole second since start, so growth over a run can be seen. */
  timeline: { s: number; rssMiB: number; heapMiB: number }[];
}

function vmHwm(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // not Linux: the sampled peak stands alone
  }
}

const path = setting('IPT_MEMORY_PROBE');
if (path) {
  const t0 = Date.now();
  const peaks: MemoryPeaks = { vmHwmBytes: 0, rssBytes: 0, heapUsedBytes: 0, heapAfterFullGcBytes: 0, heapTotalBytes: 0, externalBytes: 0, arrayBuffersBytes: 0, samples: 0, timeline: [] };
  const sample = () => {
    const m = process.memoryUsage();
    peaks.samples++;
    peaks.rssBytes = Math.max(peaks.rssBytes, m.rss);
    peaks.heapUsedBytes = Math.max(peaks.heapUsedBytes, m.heapUsed);
    peaks.heapTotalBytes = Math.max(peaks.heapTotalBytes, m.heapTotal);
    peaks.externalBytes = Math.max(peaks.externalBytes, m.external);
    peaks.arrayBuffersBytes = Math.max(peaks.arrayBuffersBytes, m.arrayBuffers);
    return m;
  };
  const flush = () => {
    const m = sample();
    peaks.vmHwmBytes = vmHwm();
    // At most one point per second, and at most 3,600 of them: the probe itself must not grow with a run.
    if (peaks.timeline.length < 3600) peaks.timeline.push({ s: Math.round((Date.now() - t0) / 1000), rssMiB: Math.round(m.rss / 2 ** 20), heapMiB: Math.round(m.heapUsed / 2 ** 20) });
    // Written aside and renamed, so a reader never sees half a file.
    writeFileSync(`${path}.tmp`, JSON.stringify(peaks));
    renameSync(`${path}.tmp`, path);
  };
  // Read as soon as a full (mark-compact) collection is reported: close to the live heap at that moment.
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) peaks.heapAfterFullGcBytes = Math.max(peaks.heapAfterFullGcBytes, process.memoryUsage().heapUsed);
    }
  });
  gcs.observe({ entryTypes: ['gc'] });
  setInterval(sample, 100).unref();
  setInterval(flush, 1000).unref();
  process.on('exit', flush);
}
