import type { IHeaders } from 'kafkajs';

/** Where a record came from; carried into dead-letter headers and handler logs. */
export interface SourceCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

export interface InputRecord<In> {
  key: string | null;
  value: In;
  headers: IHeaders;
  timestamp: string;
  source: SourceCoordinates;
}

/** One output of a handler: which declared output it goes to, its key and value (and optional headers). */
export interface Emit<Outputs extends string = string> {
  to: Outputs;
  key: string | null;
  value: unknown;
  headers?: Record<string, string>;
  /** An explicit partition (the trainer sink: one per data-parallel rank); by default the key's hash decides. */
  partition?: number;
}

/**
 * What a handler returns per record: outputs; a deliberate counted skip; or outputs together with a dead letter
 * of the input (a record that failed for good but whose failure downstream stages must still learn of).
 */
export type HandlerResult<Outputs extends string> = Emit<Outputs>[] | { skip: string } | { emits: Emit<Outputs>[]; deadLetter: string };

export interface OutputSpec {
  topic: string;
  schema: string;
  partitions?: number;
  /**
   * A changelog (state per key in a compacted topic): of the records a chunk emits under one key, only the last is
   * sent. Offsets are committed per chunk, so the state that survives always matches the committed input.
   */
  latestPerKey?: boolean;
  /**
   * Many small records as one: the output's schema is a record whose only field is an array, handlers emit its
   * items, and the items a chunk emits go out as one record per batch key (key(emit key)), in emit order, at the
   * chunk's end and with its other outputs. Each item is encoded when emitted, so one that does not fit its schema
   * dead-letters its own input record only. Emit headers and partitions do not apply.
   */
  batched?: { key(emitKey: string | null): string };
}

/**
 * A processor: its input topic(s) and schema, its named outputs with their schemas, and a handler.
 * Schemas are names of files in schemas/ (without .avsc). The processor's name is its consumer group and
 * the prefix of its dead-letter topic "<name>.dlq".
 */
export interface ProcessorSpec<In, Outputs extends string = string> {
  name: string;
  input: { topics: string[]; schema: string };
  outputs: Record<Outputs, OutputSpec>;
  /** Partitions to create for input topics that do not exist yet. */
  inputPartitions?: number;
  handle(record: InputRecord<In>): HandlerResult<Outputs> | Promise<HandlerResult<Outputs>>;
  /**
   * Backpressure from downstream work (an LLM pool, a sink): while saturated() is true the runtime pauses
   * fetching for the partition it is on and resumes once whenReady() resolves.
   */
  backpressure?: { saturated(): boolean; whenReady(): Promise<void> };
  /**
   * One active instance per group, the others standbys (a stage whose per-run state lives in its memory): all input
   * partitions go to one member, and another takes them over when it leaves or its session times out. An instance
   * that loses them while running stops (its process exits 1): its state is no longer the current one.
   */
  exclusive?: boolean;
  /**
   * For a handler that keeps state in memory across records (the mixer's counts): called once the outputs and
   * offsets of the records handled so far are committed, and when the runtime drops records it handled but did not
   * commit (a failed transaction, a revoked partition, a member its group dropped, a failed send). Those records are
   * read and handled again, so the state must go back to what it was at the last commit.
   */
  checkpoint?: { committed(): void; abandoned(): void };
}

export function defineProcessor<In, Outputs extends string>(spec: ProcessorSpec<In, Outputs>): ProcessorSpec<In, Outputs> {
  if (!/^[a-zA-Z0-9._-]+$/.test(spec.name)) throw new Error(`processor name "${spec.name}" must be a valid topic/group name`);
  if (spec.input.topics.length === 0) throw new Error(`processor ${spec.name} declares no input topic`);
  return spec;
}

export const deadLetterTopic = (processorName: string) => `${processorName}.dlq`;

/**
 * The contract every pipeline stage meets: its processor spec (what it reads, writes and how it handles a record),
 * and the lifecycle of what it owns beside the processor — tables it reads, a hand-over, a spool. Whoever runs it
 * calls `init` before the processor starts consuming and `close` after it stopped; a stage that owns nothing has
 * both as no-ops (`stageOf(spec)`).
 */
export interface Stage<In, Outputs extends string = string> {
  readonly spec: ProcessorSpec<In, Outputs>;
  init(): Promise<void>;
  close(): Promise<void>;
}

/** A stage from its spec and, when it owns any, what opens and closes its resources. */
export function stageOf<In, Outputs extends string>(spec: ProcessorSpec<In, Outputs>, own: { init?(): Promise<void>; close?(): Promise<void> } = {}): Stage<In, Outputs> {
  return { spec, init: own.init ?? (async () => undefined), close: own.close ?? (async () => undefined) };
}
