import type { RawText } from '../pipeline/records.ts';
import { defineProcessor } from '../runtime/processor.ts';

/** Forwards raw texts unchanged: the smoke pipeline, the runtime's benchmark and its tests. */
export function identityProcessor(opts: { name?: string; input: string; output: string; partitions?: number }) {
  return defineProcessor<RawText, 'out'>({
    name: opts.name ?? 'identity',
    input: { topics: [opts.input], schema: 'raw-text' },
    inputPartitions: opts.partitions,
    outputs: { out: { topic: opts.output, schema: 'raw-text', partitions: opts.partitions } },
    handle: (r) => [{ to: 'out', key: r.key, value: r.value }],
  });
}
