import avro from 'avsc';
import type { KafkaMessage, Message, TopicMessages } from 'kafkajs';
import type { Logger } from './logger.ts';
import type { ProcessorMetrics } from './metrics.ts';
import type { Emit, OutputSpec } from './processor.ts';
import { deadLetterMessage, errorText, type FailureStage } from './dead-letter.ts';
import type { AvroSerde } from './serde.ts';
import { loadSchema, type LoadedSchema } from './schemas.ts';

/** What became of one input record: its emits, or why it failed, was skipped or is dead-lettered beside its emits. */
export interface Outcome {
  emits: Emit[];
  failure?: { stage: FailureStage; reason: string };
  skip?: string;
  /** Emits go out and the input is dead-lettered too. */
  deadLetter?: string;
}

interface Route {
  topic: string;
  schema: LoadedSchema;
  batch?: { item: avro.Type; key(k: string | null): string };
}

/** The item type of a batched output's schema: a record whose only field is an array (OutputSpec.batched). */
function batchItemType(schema: LoadedSchema): avro.Type {
  const fields = (schema.type as avro.types.RecordType).fields ?? [];
  const array = fields.length === 1 ? fields[0]!.type : undefined;
  if (!(array instanceof avro.types.ArrayType)) throw new Error(`${schema.file}: a batched output's schema must be a record with one array field`);
  return array.itemsType;
}

/**
 * Turns a chunk's outcomes into the messages to produce, per topic: plain outputs one message per emit; changelog
 * outputs (latestPerKey) only each key's last value in the chunk; batched outputs one message per batch key with the
 * chunk's items; a record that failed (to decode, in its handler, to encode) one dead letter with the reason.
 */
export class OutputRouter {
  private constructor(
    private readonly processor: string,
    private readonly routes: Map<string, Route>,
    private readonly latestPerKey: Set<string>,
    private readonly dlqTopic: string,
    private readonly serde: AvroSerde,
    private readonly metrics: ProcessorMetrics,
    private readonly logger: Logger,
  ) {}

  /** Registers every output's schema under its topic. */
  static async create(processor: string, outputs: [string, OutputSpec][], dlqTopic: string, deps: { serde: AvroSerde; metrics: ProcessorMetrics; logger: Logger }): Promise<OutputRouter> {
    const routes = new Map<string, Route>();
    for (const [name, o] of outputs) {
      await deps.serde.registerValueSchema(o.topic, o.schema);
      const schema = loadSchema(o.schema);
      routes.set(name, { topic: o.topic, schema, batch: o.batched && { item: batchItemType(schema), key: o.batched.key } });
    }
    const latestPerKey = new Set(outputs.filter(([, o]) => o.latestPerKey).map(([, o]) => o.topic));
    return new OutputRouter(processor, routes, latestPerKey, dlqTopic, deps.serde, deps.metrics, deps.logger);
  }

  route(topic: string, partition: number, messages: KafkaMessage[], outcomes: Outcome[]): TopicMessages[] {
    const { serde, metrics, processor } = this;
    const byTopic = new Map<string, Message[]>();
    const push = (t: string, m: Message) => {
      let list = byTopic.get(t);
      if (!list) byTopic.set(t, (list = []));
      list.push(m);
    };
    // Changelog outputs: only each key's last value in the chunk is encoded and sent (at the chunk's end).
    const latest = new Map<string, { topic: string; schema: LoadedSchema; emit: Emit }>();
    // Batched outputs: the chunk's items per topic and batch key, sent as one record each (at the chunk's end).
    const batches = new Map<string, { topic: string; key: string; items: Buffer[] }>();
    const outCounts = new Map<string, number>();
    for (let i = 0; i < messages.length; i++) {
      const msg = messages[i]!;
      const outcome = outcomes[i]!;
      const source = { topic, partition, offset: msg.offset };
      let failure = outcome.failure;
      const encoded: [string, Message][] = [];
      const items: [string, string, Buffer][] = [];
      if (!failure) {
        try {
          for (const e of outcome.emits) {
            const out = this.routes.get(e.to);
            if (!out) throw new Error(`handler emitted to undeclared output "${e.to}"`);
            if (out.batch) {
              items.push([out.topic, out.batch.key(e.key), serde.encodeItem(out.batch.item, e.value)]);
              continue;
            }
            if (this.latestPerKey.has(out.topic)) {
              const k = `${out.topic}\u0000${e.key ?? ''}`;
              latest.delete(k);
              latest.set(k, { topic: out.topic, schema: out.schema, emit: e });
              continue;
            }
            encoded.push([out.topic, { key: e.key, value: serde.encode(out.topic, out.schema, e.value), headers: e.headers, partition: e.partition }]);
          }
        } catch (err) {
          failure = { stage: 'encode', reason: errorText(err) };
        }
      }
      if (failure) {
        metrics.deadLettered.inc({ processor, stage: failure.stage });
        this.logger.warn({ source, stage: failure.stage, reason: failure.reason }, 'dead-lettered');
        push(this.dlqTopic, deadLetterMessage(processor, msg, source, failure.stage, failure.reason));
        continue;
      }
      if (outcome.skip !== undefined) metrics.skipped.inc({ processor, reason: outcome.skip });
      if (outcome.deadLetter !== undefined) {
        metrics.deadLettered.inc({ processor, stage: 'handler' });
        push(this.dlqTopic, deadLetterMessage(processor, msg, source, 'handler', outcome.deadLetter, outcome.emits.length > 0));
      }
      for (const [t, m] of encoded) {
        push(t, m);
        outCounts.set(t, (outCounts.get(t) ?? 0) + 1);
      }
      for (const [t, key, item] of items) {
        const k = `${t}\u0000${key}`;
        let b = batches.get(k);
        if (!b) batches.set(k, (b = { topic: t, key, items: [] }));
        b.items.push(item);
      }
    }
    for (const b of batches.values()) {
      push(b.topic, { key: b.key, value: serde.encodeBatch(b.topic, b.items) });
      outCounts.set(b.topic, (outCounts.get(b.topic) ?? 0) + b.items.length);
    }
    for (const { topic: t, schema, emit: e } of latest.values()) {
      // A state value that does not fit its schema is a bug in the processor, not in a record: fail the batch.
      push(t, { key: e.key, value: serde.encode(t, schema, e.value), headers: e.headers, partition: e.partition });
      outCounts.set(t, (outCounts.get(t) ?? 0) + 1);
    }
    for (const [t, n] of outCounts) metrics.recordsOut.inc({ processor, topic: t }, n);
    metrics.recordsIn.inc({ processor, topic }, messages.length);
    return [...byTopic].map(([t, msgs]) => ({ topic: t, messages: msgs }));
  }
}
