import type { KafkaMessage } from 'kafkajs';
import type { ProcessorMetrics } from './metrics.ts';
import type { HandlerResult, InputRecord, ProcessorSpec, SourceCoordinates } from './processor.ts';
import { errorText } from './dead-letter.ts';
import type { AvroSerde } from './serde.ts';
import type { LoadedSchema } from './schemas.ts';
import type { Outcome } from './output-router.ts';

/**
 * Decodes one input message and runs the processor's handler on it, timing it. Returns synchronously when the handler
 * does, so cheap handlers pay no promise per record; a decode error or a throwing handler becomes a failed outcome.
 */
export function recordHandler<In, Outputs extends string>(
  spec: ProcessorSpec<In, Outputs>,
  serde: AvroSerde,
  inputSchema: LoadedSchema,
  metrics: ProcessorMetrics,
): (msg: KafkaMessage, source: SourceCoordinates) => Outcome | Promise<Outcome> {
  // Label look-ups once, not per record.
  const handlerLatency = metrics.handlerLatency.labels({ processor: spec.name });
  const finish = (result: HandlerResult<Outputs>, started: number): Outcome => {
    handlerLatency.observe((performance.now() - started) / 1000);
    if (Array.isArray(result)) return { emits: result };
    if ('skip' in result) return { emits: [], skip: result.skip };
    return { emits: result.emits, deadLetter: result.deadLetter };
  };
  const handlerFailed = (err: unknown): Outcome => ({ emits: [], failure: { stage: 'handler', reason: errorText(err) } });
  return (msg, source) => {
    let value: In;
    try {
      value = serde.decode(msg.value, inputSchema) as In;
    } catch (err) {
      return { emits: [], failure: { stage: 'decode', reason: errorText(err) } };
    }
    const record: InputRecord<In> = { key: msg.key?.toString() ?? null, value, headers: msg.headers ?? {}, timestamp: msg.timestamp, source };
    const started = performance.now();
    try {
      const result = spec.handle(record);
      if (result instanceof Promise) return result.then((r) => finish(r, started), handlerFailed);
      return finish(result, started);
    } catch (err) {
      return handlerFailed(err);
    }
  };
}
