/**
 * Runs `task` now and then again intervalMs after each run ends (never two at once), reporting its errors and going
 * on. Returns the stop.
 */
export function startPeriodic(task: () => Promise<void>, intervalMs: number, onError: (e: Error) => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      await task();
    } catch (err) {
      onError(err as Error);
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
