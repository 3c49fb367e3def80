import type { Kafka } from 'kafkajs';
import type { Logger } from '../../processors/runtime/logger.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { defineProcessor, type HandlerResult, type OutputSpec } from '../../processors/runtime/processor.ts';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { kafkaTables } from '../../processors/runtime/tables.ts';
import { fusedProcessor } from '../../processors/pipeline/fused-processor.ts';
import { recordKey, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { instantRecordedBackend } from './instant-backend.ts';
import { llmPorts } from '../../connectors/llm/llm-ports.ts';

/**
 * A processor over the raw texts that writes exactly what the fused stage writes for each of them (the same records,
 * so the same bytes), computed in memory beforehand: Kafka, Avro and the runtime with none of the method's work.
 * Its rate is the most the fused topology could reach with these outputs however cheap the work became. Also the
 * time computing them took per text: the method's work with no Kafka at all.
 */
export async function fusedOutputsOnly(kafka: Kafka, serde: AvroSerde, topics: PipelineTopics, logger: Logger, records: readonly RawTextRecord[]) {
  const ctx = new PipelineContext(kafkaTables(kafka, serde), topics, llmPorts({ endpoints: [], concurrency: 64, retries: 0, timeoutMs: 10_000, client: instantRecordedBackend() }), logger);
  await ctx.start();
  const fused = fusedProcessor(ctx);
  const results = new Map<string, HandlerResult<string>>();
  let methodMs: number;
  try {
    const t0 = performance.now();
    for (const value of records) {
      results.set(value.id, await fused.spec.handle({ key: recordKey(value.runId, value.id), value, headers: {}, timestamp: '0', source: { topic: topics.raw, partition: 0, offset: '0' } }));
    }
    methodMs = performance.now() - t0;
  } finally {
    await fused.close();
    await ctx.stop();
  }
  const spec = defineProcessor<RawTextRecord, string>({
    name: `${topics.prefix}.fused-outputs-only`,
    input: { topics: [topics.raw], schema: 'raw-text' },
    outputs: fused.spec.outputs as Record<string, OutputSpec>,
    handle: ({ value }) => results.get(value.id) ?? { skip: 'not computed beforehand' },
  });
  // Computing them is the fused chain's work alone, in memory, one text after another: its cost per text.
  return { spec, methodMicrosPerText: (methodMs * 1000) / records.length };
}
