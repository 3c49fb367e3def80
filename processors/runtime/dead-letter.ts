import type { KafkaMessage, Message } from 'kafkajs';
import type { SourceCoordinates } from './processor.ts';

export type FailureStage = 'decode' | 'handler' | 'encode';

/** Header names of a dead-lettered record; the value and key are the original bytes, untouched. */
export const DLQ_HEADERS = {
  reason: 'ipt.dlq.reason',
  stage: 'ipt.dlq.stage',
  processor: 'ipt.dlq.processor',
  topic: 'ipt.dlq.source.topic',
  partition: 'ipt.dlq.source.partition',
  offset: 'ipt.dlq.source.offset',
  time: 'ipt.dlq.time',
  /** "emitted" when the record's outputs went out beside its dead letter (a failed synthesis still sends its result). */
  outputs: 'ipt.dlq.outputs',
} as const;

export function deadLetterMessage(processor: string, msg: KafkaMessage, source: SourceCoordinates, stage: FailureStage, reason: string, outputsEmitted = false): Message {
  return {
    key: msg.key,
    value: msg.value,
    headers: {
      ...msg.headers,
      [DLQ_HEADERS.reason]: reason.slice(0, 4000),
      [DLQ_HEADERS.stage]: stage,
      [DLQ_HEADERS.processor]: processor,
      [DLQ_HEADERS.topic]: source.topic,
      [DLQ_HEADERS.partition]: String(source.partition),
      [DLQ_HEADERS.offset]: source.offset,
      [DLQ_HEADERS.time]: new Date().toISOString(),
      [DLQ_HEADERS.outputs]: outputsEmitted ? 'emitted' : 'none',
    },
  };
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
