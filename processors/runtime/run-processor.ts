import { Partitioners } from 'kafkajs';
import avro from 'avsc';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer, TopicMessages } from 'kafkajs';
import { createKafka } from './kafka-client.ts';
import { assertKafkajsSendPatched } from './kafkajs-patch.ts';
import { createLogger, type Logger } from './logger.ts';
import { ProcessorMetrics } from './metrics.ts';
import { deadLetterTopic, type Emit, type OutputSpec, type HandlerResult, type InputRecord, type ProcessorSpec, type SourceCoordinates } from './processor.ts';
import { deadLetterMessage, errorText, type FailureStage } from './dead-letter.ts';
import { AvroSerde } from './serde.ts';
import { loadSchema, type LoadedSchema } from './schemas.ts';
import { describeMismatch, ensureTopics } from './topics.ts';
import { accessDenied, type AccessContext } from './kafka-access.ts';
import { mapOrdered } from './concurrency.ts';
import { exclusiveAssigner, type ExclusiveClaim } from './exclusive-assigner.ts';
import type { RuntimeConfig } from './runtime-config.ts';

export interface RunningProcessor {
  name: string;
  ready(): boolean;
  /** Stop fetching, finish the batch in flight, commit it, close clients. */
  stop(): Promise<void>;
  /** Resolves when the consumer stopped for good (after stop(), or after a crash it could not recover from). */
  done: Promise<void>;
  /** Why the processor stopped by itself (its consumer crashed past its restarts); undefined after stop(). */
  readonly failure?: Error;
}

/** A consumer that crashes for good is rebuilt; more crashes than this within CRASH_WINDOW_MS stop the processor. */
const MAX_RESTARTS = 5;
const CRASH_WINDOW_MS = 5 * 60_000;


/** The item type of a batched output's schema: a record whose only field is an array (OutputSpec.batched). */
function batchItemType(schema: LoadedSchema): avro.Type {
  const fields = (schema.type as avro.types.RecordType).fields ?? [];
  const array = fields.length === 1 ? fields[0]!.type : undefined;
  if (!(array instanceof avro.types.ArrayType)) throw new Error(`${schema.file}: a batched output's schema must be a record with one array field`);
  return array.itemsType;
}

interface Outcome {
  emits: Emit[];
  failure?: { stage: FailureStage; reason: string };
  skip?: string;
  /** Emits go out and the input is dead-lettered too. */
  deadLetter?: string;
}

/**
 * Binds a processor spec to Kafka: creates its topics, registers its schemas, consumes its input in its consumer
 * group, runs the handler with bounded concurrency, produces outputs and dead letters, and commits — after the
 * outputs are acknowledged (at-least-once) or inside one transaction with them (exactly-once).
 */
export async function startProcessor<In, Outputs extends string>(
  spec: ProcessorSpec<In, Outputs>,
  cfg: RuntimeConfig,
  deps: { metrics?: ProcessorMetrics; logger?: Logger; kafka?: Kafka } = {},
): Promise<RunningProcessor> {
  // One transactional producer runs one transaction at a time: two partitions' chunks would interleave in it.
  if (cfg.exactlyOnce) assertKafkajsSendPatched(spec.name);
  if (cfg.exactlyOnce && cfg.partitionsConsumedConcurrently > 1) throw new Error(`${spec.name}: exactly-once runs one partition at a time per process (partitionsConsumedConcurrently = ${cfg.partitionsConsumedConcurrently})`);
  const logger = (deps.logger ?? createLogger('instruct-pt')).child({ processor: spec.name });
  const metrics = deps.metrics ?? new ProcessorMetrics();
  const kafka = deps.kafka ?? createKafka({ brokers: cfg.brokers, security: cfg.security, clientId: `${cfg.clientId}-${spec.name}`, logger });
  const dlqTopic = deadLetterTopic(spec.name);
  const outputs = Object.entries(spec.outputs) as [Outputs, OutputSpec][];
  const latestPerKey = new Set(outputs.filter(([, o]) => o.latestPerKey).map(([, o]) => o.topic));

  const admin = kafka.admin();
  await admin.connect();
  try {
    const mismatches = await ensureTopics(admin, [
      ...spec.input.topics.map((topic) => ({ topic, partitions: spec.inputPartitions ?? 1 })),
      ...outputs.map(([, o]) => ({ topic: o.topic, partitions: o.partitions ?? 1 })),
      { topic: dlqTopic, partitions: 1 },
    ]);
    for (const m of mismatches) logger.warn({ topic: m.topic }, describeMismatch(m));
  } finally {
    await admin.disconnect();
  }

  const serde = new AvroSerde(cfg.registryUrl);
  const inputSchema = loadSchema(spec.input.schema);
  for (const topic of spec.input.topics) await serde.registerValueSchema(topic, spec.input.schema);
  const outputSchemas = new Map<Outputs, { topic: string; schema: LoadedSchema; batch?: { item: avro.Type; key(k: string | null): string } }>();
  for (const [name, o] of outputs) {
    await serde.registerValueSchema(o.topic, o.schema);
    const schema = loadSchema(o.schema);
    outputSchemas.set(name, { topic: o.topic, schema, batch: o.batched && { item: batchItemType(schema), key: o.batched.key } });
  }

  const newProducer = (): Producer => cfg.exactlyOnce
    ? kafka.producer({
        transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        // The broker answers CONCURRENT_TRANSACTIONS while the previous commit's markers are written; the Java
        // client retries that after ~20 ms, kafkajs's default 200 ms would stall every transaction.
        retry: { initialRetryTime: 20, maxRetryTime: 1000, retries: 10 },
      })
    : kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  const transactionalId = cfg.exactlyOnce ? `${spec.name}-${cfg.instanceId}` : undefined;
  const access: AccessContext = { reads: { topics: spec.input.topics, group: spec.name }, writes: [...outputs.map(([, o]) => o.topic), dlqTopic], transactionalId };
  let producer = newProducer();
  try {
    await producer.connect();
  } catch (err) {
    throw accessDenied(err, { transactionalId }, kafka) ?? err;
  }
  /**
   * A transaction that failed part-way (a broker killed during its commit) can leave kafkajs's transactional producer
   * in a state it never leaves ("Cannot call beginTransaction in state COMMITTING"). A new producer with the same
   * transactional id starts clean: initialising it fences the old one and aborts whatever it left open.
   */
  const replaceProducer = async (): Promise<void> => {
    const old = producer;
    producer = newProducer();
    await old.disconnect().catch(() => undefined);
    try {
      await producer.connect();
    } catch (err) {
      // The broker may still be down: the next transaction connects it (or fails, and the batch is retried).
      logger.warn({ err: (err as Error).message }, 'transactional producer not reconnected yet');
    }
  };

  // Heartbeats go out ten times per session, also while a chunk waits (eachBatch).
  const heartbeatMs = Math.floor(cfg.sessionTimeoutMs / 10);
  let consumer!: Consumer;
  let joined = false;
  let stopping = false;
  let failure: Error | undefined;
  const crashes: number[] = [];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  // An exclusive processor (spec.exclusive): when it started, and whether it has held the partitions since.
  const startedAt = Date.now();
  let everHeld = false;

  /**
   * An exclusive processor that held the partitions and lost them (its session timed out and a standby took over, or
   * its consumer was rebuilt after the standby took over) stops: the state in its memory is no longer the current
   * one. Its process exits 1; started again, it joins as a standby.
   */
  const standDown = (c: Consumer, why: string) => {
    if (stopping) return;
    stopping = true;
    joined = false;
    failure = new Error(`processor ${spec.name}: ${why}`);
    logger.error({ reason: why }, 'exclusive processor lost its partitions: stopping');
    // Not awaited here, inside the consumer's own join: disconnecting waits for its run loop.
    setImmediate(() => {
      void c
        .disconnect()
        .catch(() => undefined)
        .then(() => producer.disconnect())
        .catch(() => undefined)
        .finally(resolveDone);
    });
  };

  /**
   * Connects a consumer in the stage's group and runs it. kafkajs restarts a consumer itself only after retriable
   * errors; after any other crash (say, the coordinator no longer knows the member) it leaves it disconnected, so
   * the stage rebuilds one here rather than living on with a dead consumer, and gives up (done, failure) only after
   * MAX_RESTARTS crashes within CRASH_WINDOW_MS, so that its process can exit non-zero.
   */
  const startConsumer = async (): Promise<void> => {
    // What this consumer tells the group's leader at each join when the processor is exclusive.
    const claim: ExclusiveClaim = { holds: false, heldAt: 0, since: startedAt };
    const c = kafka.consumer({
      groupId: spec.name,
      readUncommitted: false,
      sessionTimeout: cfg.sessionTimeoutMs,
      // A member that does not rejoin a rebalance within this long is dropped: a chunk waiting on slow work gets this
      // long to reach its next boundary (the max.poll.interval.ms of kafkajs).
      rebalanceTimeout: 2 * cfg.sessionTimeoutMs,
      heartbeatInterval: heartbeatMs,
      maxBytesPerPartition: 4 * 1024 * 1024,
      // An idle fetch returns after this long; it bounds how long stop() waits for the fetch in flight.
      maxWaitTimeInMs: 1000,
      allowAutoTopicCreation: false,
      // A refused ACL does not heal by restarting: the crash handler below stops the stage with a message instead.
      retry: { retries: 5, restartOnFailure: async (e) => accessDenied(e, access, kafka) === undefined },
      ...(spec.exclusive ? { partitionAssigners: [exclusiveAssigner(() => claim)] } : {}),
    });
    c.on(c.events.GROUP_JOIN, (e) => {
      if (!spec.exclusive) {
        joined = true;
        logger.info('joined consumer group');
        return;
      }
      const holds = Object.values(e.payload.memberAssignment).some((ps) => ps.length > 0);
      if (!holds && everHeld) return standDown(c, 'another instance holds its partitions now (it was taken for dead, or its consumer was rebuilt after a standby took over)');
      claim.holds = holds;
      if (holds) {
        claim.heldAt = Date.now();
        everHeld = true;
      }
      joined = true;
      logger.info({ active: holds }, holds ? 'joined consumer group: active' : 'joined consumer group: standby');
    });
    c.on(c.events.CRASH, (e) => {
      if (e.payload.restart) {
        logger.warn({ err: e.payload.error.message }, 'consumer crashed; kafkajs restarts it');
        return;
      }
      joined = false;
      if (stopping) return;
      const denied = accessDenied(e.payload.error, access, kafka);
      if (denied) {
        failure = denied;
        logger.error({ err: e.payload.error.message }, denied.message);
        void producer.disconnect().finally(resolveDone);
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
      if (crashes.length > MAX_RESTARTS) {
        failure = new Error(`processor ${spec.name}: consumer crashed ${crashes.length} times within ${CRASH_WINDOW_MS / 1000} s; last: ${e.payload.error.message}`);
        logger.error({ err: e.payload.error.message }, 'consumer crashed for good: stopping the processor');
        void producer.disconnect().finally(resolveDone);
        return;
      }
      logger.error({ err: e.payload.error.message, restart: crashes.length }, 'consumer crashed; starting a new one');
      metrics.consumerRestarts.inc({ processor: spec.name });
      const again = () =>
        startConsumer().catch((err: Error) => {
          logger.error({ err: err.message }, 'consumer restart failed; trying again');
          if (!stopping) setTimeout(again, 2000);
        });
      setTimeout(again, 1000);
    });
    await c.connect();
    for (const topic of spec.input.topics) await c.subscribe({ topic, fromBeginning: true });
    consumer = c;
    await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: cfg.partitionsConsumedConcurrently, eachBatch });
  };

  // Label look-ups once, not per record.
  const handlerLatency = metrics.handlerLatency.labels({ processor: spec.name });
  const finish = (result: HandlerResult<Outputs>, started: number): Outcome => {
    handlerLatency.observe((performance.now() - started) / 1000);
    if (Array.isArray(result)) return { emits: result };
    if ('skip' in result) return { emits: [], skip: result.skip };
    return { emits: result.emits, deadLetter: result.deadLetter };
  };
  const handlerFailed = (err: unknown): Outcome => ({ emits: [], failure: { stage: 'handler', reason: errorText(err) } });

  // Returns synchronously when the handler does, so cheap handlers pay no promise per record.
  const handleOne = (msg: KafkaMessage, source: SourceCoordinates): Outcome | Promise<Outcome> => {
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

  const processChunk = async (topic: string, partition: number, messages: KafkaMessage[]): Promise<TopicMessages[]> => {
    await serde.prefetch(messages.map((m) => m.value));
    const outcomes = await mapOrdered(messages, cfg.concurrency, (msg) => handleOne(msg, { topic, partition, offset: msg.offset }));
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
            const out = outputSchemas.get(e.to as Outputs);
            if (!out) throw new Error(`handler emitted to undeclared output "${e.to}"`);
            if (out.batch) {
              items.push([out.topic, out.batch.key(e.key), serde.encodeItem(out.batch.item, e.value)]);
              continue;
            }
            if (latestPerKey.has(out.topic)) {
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
        metrics.deadLettered.inc({ processor: spec.name, stage: failure.stage });
        logger.warn({ source, stage: failure.stage, reason: failure.reason }, 'dead-lettered');
        push(dlqTopic, deadLetterMessage(spec.name, msg, source, failure.stage, failure.reason));
        continue;
      }
      if (outcome.skip !== undefined) metrics.skipped.inc({ processor: spec.name, reason: outcome.skip });
      if (outcome.deadLetter !== undefined) {
        metrics.deadLettered.inc({ processor: spec.name, stage: 'handler' });
        push(dlqTopic, deadLetterMessage(spec.name, msg, source, 'handler', outcome.deadLetter, outcome.emits.length > 0));
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
    for (const [t, n] of outCounts) metrics.recordsOut.inc({ processor: spec.name, topic: t }, n);
    metrics.recordsIn.inc({ processor: spec.name, topic }, messages.length);
    return [...byTopic].map(([t, msgs]) => ({ topic: t, messages: msgs }));
  };

  /**
   * A fetched batch is processed chunk by chunk (IPT_BATCH_SIZE records). At-least-once keeps up to
   * IPT_MAX_INFLIGHT_BATCHES chunks' produce requests in flight and commits their offsets once all are acknowledged;
   * exactly-once puts the same chunks' outputs and their offsets into one transaction. Either way an offset is
   * committed only with, or after, every output of the records before it.
   */
  const eachBatch = async (payload: EachBatchPayload) => {
    // Heartbeats go on while a chunk waits (an LLM outage, a slow sink): kafkajs sends them only when asked, and a
    // member silent for the session timeout is dropped from its group. A rebalance they report ends the batch at
    // the next chunk boundary, after committing what is done.
    let rebalancing = false;
    const keepAlive = setInterval(() => {
      payload.heartbeat().catch((err: Error & { type?: string }) => {
        // A member the group dropped (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: silent past its session, cut off the
        // network) cannot commit what it does now: stop at the chunk boundary as for a rebalance.
        if (err.type === 'REBALANCE_IN_PROGRESS' || err.type === 'NOT_COORDINATOR_FOR_GROUP' || err.type === 'UNKNOWN_MEMBER_ID' || err.type === 'ILLEGAL_GENERATION') rebalancing = true;
        else logger.debug({ err: err.message }, 'heartbeat failed');
      });
    }, heartbeatMs);
    try {
      await consumeBatch(payload, () => rebalancing);
    } finally {
      clearInterval(keepAlive);
    }
  };

  /**
   * Exactly-once: after a transaction failed, how many of the batch's first messages a transaction already committed.
   * A commit can succeed on the broker while its answer is lost (a broker killed mid-commit); the batch is then read
   * again from the consumer's position, and processing it again would write its outputs twice. Beginning (and
   * dropping) a transaction makes the coordinator settle the old one first; the group's committed offset then says
   * where the work really stands.
   */
  let failedTransactions = 0;
  const checkedAfter = new Map<string, number>();
  const alreadyCommitted = async (topic: string, partition: number, messages: { offset: string }[]): Promise<number> => {
    const key = `${topic}/${partition}`;
    if ((checkedAfter.get(key) ?? 0) >= failedTransactions) return 0;
    try {
      const probe = await producer.transaction();
      await probe.abort();
    } catch (err) {
      // The coordinator is not back yet: a clean producer for the next try; the batch is read again then.
      await replaceProducer();
      throw err;
    }
    const admin = kafka.admin();
    await admin.connect();
    let committed: bigint;
    try {
      const [offsets] = await admin.fetchOffsets({ groupId: spec.name, topics: [topic] });
      committed = BigInt(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    } finally {
      await admin.disconnect();
    }
    checkedAfter.set(key, failedTransactions);
    let n = 0;
    while (n < messages.length && BigInt(messages[n]!.offset) < committed) n++;
    if (n > 0) logger.warn({ topic, partition, skipped: n, committed: committed.toString() }, 'a transaction whose answer was lost had committed these records: not processing them again');
    return n;
  };

  const consumeBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause, commitOffsetsIfNecessary }: EachBatchPayload, rebalancing: () => boolean) => {
    const { topic, partition } = batch;
    const start = cfg.exactlyOnce ? await alreadyCommitted(topic, partition, batch.messages) : 0;
    if (start > 0) resolveOffset(batch.messages[start - 1]!.offset);
    let sends: Promise<unknown>[] = [];
    let txnMessages: TopicMessages[] = [];
    let uncommitted: string | undefined;
    let since = performance.now();

    const flush = async () => {
      if (uncommitted === undefined) return;
      const next = (BigInt(uncommitted) + 1n).toString();
      if (cfg.exactlyOnce) {
        let txn: Awaited<ReturnType<Producer['transaction']>> | undefined;
        try {
          txn = await producer.transaction();
          if (txnMessages.length > 0) await txn.sendBatch({ topicMessages: txnMessages, acks: -1 });
          await txn.sendOffsets({ consumerGroupId: spec.name, topics: [{ topic, partitions: [{ partition, offset: next }] }] });
          await txn.commit();
        } catch (err) {
          await txn?.abort().catch(() => undefined);
          logger.warn({ err: (err as Error).message }, 'transaction failed: aborted, and the batch will be read again with a new producer');
          failedTransactions++;
          await replaceProducer();
          throw err;
        }
      } else {
        await Promise.all(sends);
        // consumer.commitOffsets silently does nothing once stop() has begun; the batch's own commit still works then
        // (without kafkajs's retries, which only matter while running).
        if (isRunning()) await consumer.commitOffsets([{ topic, partition, offset: next }]);
        else await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next }] }] });
      }
      resolveOffset(uncommitted);
      metrics.batchLatency.observe({ processor: spec.name }, (performance.now() - since) / 1000);
      metrics.lag.set({ processor: spec.name, topic, partition: String(partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(uncommitted) - 1n)));
      sends = [];
      txnMessages = [];
      uncommitted = undefined;
      since = performance.now();
      await heartbeat();
    };

    for (let i = start; i < batch.messages.length; i += cfg.batchSize) {
      if (isStale()) {
        // The partition was revoked: commit nothing more; the next owner re-reads from the last commit.
        await Promise.allSettled(sends);
        return;
      }
      if (!isRunning() || rebalancing()) {
        // Stopping, or the group rebalances: commit the chunks already processed (their outputs are out), so a
        // restart or the next owner does not do them again; the rest is re-read from that commit.
        await flush();
        return;
      }
      if (spec.backpressure?.saturated()) {
        // Stop fetching this partition until downstream has room; unprocessed messages are fetched again later.
        await flush();
        metrics.paused.set({ processor: spec.name }, 1);
        const resume = pause();
        void spec.backpressure.whenReady().then(() => {
          metrics.paused.set({ processor: spec.name }, 0);
          resume();
        });
        return;
      }
      const chunk = batch.messages.slice(i, i + cfg.batchSize);
      const topicMessages = await processChunk(topic, partition, chunk);
      uncommitted = chunk[chunk.length - 1]!.offset;
      if (cfg.exactlyOnce) txnMessages.push(...topicMessages);
      else if (topicMessages.length > 0) sends.push(producer.sendBatch({ topicMessages, acks: -1 }));
      const inFlight = cfg.exactlyOnce ? Math.ceil(txnMessages.reduce((n, t) => n + t.messages.length, 0) / cfg.batchSize) : sends.length;
      if (inFlight >= cfg.maxInFlightBatches) await flush();
    }
    await flush();
  };

  await startConsumer();
  logger.info({ inputs: spec.input.topics, outputs: outputs.map(([, o]) => o.topic), exactlyOnce: cfg.exactlyOnce }, 'processor started');

  return {
    name: spec.name,
    ready: () => joined && !stopping && failure === undefined,
    done,
    get failure() {
      return failure;
    },
    async stop() {
      if (stopping) return done;
      stopping = true;
      logger.info('stopping: finishing the batch in flight');
      // kafkajs's disconnect waits for the batch in flight, which commits what it processed (consumeBatch).
      await consumer.disconnect();
      await producer.disconnect();
      resolveDone();
      logger.info('stopped');
    },
  };
}
