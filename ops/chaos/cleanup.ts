/**
 * What must not outlive the chaos suite (its private stack's services run detached; its stage processes would be
 * orphaned): undone on SIGINT/SIGTERM before the process exits, as well as in the suite's own finally blocks. The
 * signal handlers are there only while something is pending, so that the process's usual handling of signals is
 * left alone otherwise (a test runner stopping its worker, say).
 */
const pending = new Set<() => Promise<void>>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let signalled = false;

/** A signal came: the suite starts nothing more. */
export const interrupted = () => signalled;

function onSignal(sig: NodeJS.Signals): void {
  signalled = true;
  process.stderr.write(`chaos: ${sig}: stopping what the suite started\n`);
  // Newest first: stage processes before the stack they talk to.
  const all = [...pending].reverse();
  pending.clear();
  void (async () => {
    for (const u of all) await u().catch(() => undefined);
  })().finally(() => process.exit(130));
}

export function onInterrupt(undo: () => Promise<void>): () => void {
  if (pending.size === 0) for (const sig of SIGNALS) process.on(sig, onSignal);
  pending.add(undo);
  return () => {
    if (pending.delete(undo) && pending.size === 0) for (const sig of SIGNALS) process.off(sig, onSignal);
  };
}
