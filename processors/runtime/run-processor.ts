import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, TopicMessages } from 'kafkajs';
import { createKafka } from './kafka-client.ts';
import { assertKafkajsSendPatched } from './kafkajs-patch.ts';
import { createLogger, type Logger } from './logger.ts';
import { ProcessorMetrics } from './metrics.ts';
import { deadLetterTopic, type OutputSpec, type ProcessorSpec } from './processor.ts';
import { AvroSerde } from './serde.ts';
import { loadSchema } from './schemas.ts';
import { ensureProcessorTopics } from './topics.ts';
import { accessDenied, type AccessContext } from './kafka-access.ts';
import { mapOrdered } from './concurrency.ts';
import { exclusiveAssigner, type ExclusiveClaim } from './exclusive-assigner.ts';
import type { RuntimeConfig } from './runtime-config.ts';
import { OutputRouter } from './output-router.ts';
import { recordHandler } from './record-handler.ts';
import { atLeastOnce, exactlyOnce } from './commit-strategy.ts';
import { learnFromHeartbeat, type Membership } from './group-membership.ts';
import { CrashWindow } from './crash-window.ts';

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

  await ensureProcessorTopics(kafka, [
    ...spec.input.topics.map((topic) => ({ topic, partitions: spec.inputPartitions ?? 1 })),
    ...outputs.map(([, o]) => ({ topic: o.topic, partitions: o.partitions ?? 1 })),
    { topic: dlqTopic, partitions: 1 },
  ], logger);

  const serde = new AvroSerde(cfg.registryUrl);
  const inputSchema = loadSchema(spec.input.schema);
  for (const topic of spec.input.topics) await serde.registerValueSchema(topic, spec.input.schema);
  const router = await OutputRouter.create(spec.name, outputs, dlqTopic, { serde, metrics, logger });
  const transactionalId = cfg.exactlyOnce ? `${spec.name}-${cfg.instanceId}` : undefined;
  const access: AccessContext = { reads: { topics: spec.input.topics, group: spec.name }, writes: [...outputs.map(([, o]) => o.topic), dlqTopic], transactionalId };
  const commitSettings = { kafka, group: spec.name, batchSize: cfg.batchSize, logger };
  const commits = transactionalId !== undefined ? await exactlyOnce({ ...commitSettings, transactionalId }) : await atLeastOnce(commitSettings);

  // Heartbeats go out ten times per session, also while a chunk waits (eachBatch).
  const heartbeatMs = Math.floor(cfg.sessionTimeoutMs / 10);
  let consumer!: Consumer;
  let joined = false;
  let stopping = false;
  let failure: Error | undefined;
  const crashes = new CrashWindow(MAX_RESTARTS, CRASH_WINDOW_MS);
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
        .then(() => commits.disconnect())
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
        void commits.disconnect().finally(resolveDone);
        return;
      }
      if (crashes.record()) {
        failure = new Error(`processor ${spec.name}: consumer ${crashes.describe(e.payload.error)}`);
        logger.error({ err: e.payload.error.message }, 'consumer crashed for good: stopping the processor');
        void commits.disconnect().finally(resolveDone);
        return;
      }
      logger.error({ err: e.payload.error.message, restart: crashes.count }, 'consumer crashed; starting a new one');
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

  const handleOne = recordHandler(spec, serde, inputSchema, metrics);
  const processChunk = async (topic: string, partition: number, messages: KafkaMessage[]): Promise<TopicMessages[]> => {
    await serde.prefetch(messages.map((m) => m.value));
    const outcomes = await mapOrdered(messages, cfg.concurrency, (msg) => handleOne(msg, { topic, partition, offset: msg.offset }));
    return router.route(topic, partition, messages, outcomes);
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
    const member: Membership = { rebalancing: false, dropped: false };
    const keepAlive = setInterval(() => void payload.heartbeat().catch((err: Error) => heartbeatFailed(member, err)), heartbeatMs);
    try {
      await consumeBatch(payload, member);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const heartbeatFailed = (m: Membership, err: Error & { type?: string }) => {
    if (!learnFromHeartbeat(m, err)) logger.debug({ err: err.message }, 'heartbeat failed');
  };

  const consumeBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause, commitOffsetsIfNecessary }: EachBatchPayload, member: Membership) => {
    const { topic, partition } = batch;
    const start = await commits.alreadyCommitted(topic, partition, batch.messages);
    if (start > 0) resolveOffset(batch.messages[start - 1]!.offset);
    const out = commits.open();
    let uncommitted: string | undefined;
    let since = performance.now();

    /**
     * Exactly-once: a member its group dropped commits nothing more. The member that took its partitions over reads
     * from the last commit and does this work too; kafkajs's transactional offset commit carries no group generation
     * (KIP-447), so the broker would accept this one's commit all the same and both outputs would count.
     */
    const fenced = () => commits.exactlyOnce && member.dropped;
    /** Drops what was handled since the last commit: it is read and handled again, by this member or the next owner. */
    const abandon = async () => {
      await out.abandon();
      spec.checkpoint?.abandoned();
      uncommitted = undefined;
    };
    const flush = async () => {
      if (uncommitted === undefined) return;
      // A member that was paused or cut off may not have heard yet: ask (sent only when a heartbeat is due).
      if (commits.exactlyOnce) await heartbeat().catch((err: Error) => heartbeatFailed(member, err));
      if (fenced()) {
        logger.warn({ topic, partition, uncommitted }, 'dropped from the group: what was done since the last commit is not committed, and is read again from there');
        await abandon();
        return;
      }
      const next = (BigInt(uncommitted) + 1n).toString();
      await out.commit(topic, partition, next, async (n) => {
        // consumer.commitOffsets silently does nothing once stop() has begun; the batch's own commit still works then
        // (without kafkajs's retries, which only matter while running).
        if (isRunning()) await consumer.commitOffsets([{ topic, partition, offset: n }]);
        else await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: n }] }] });
      });
      spec.checkpoint?.committed();
      resolveOffset(uncommitted);
      metrics.batchLatency.observe({ processor: spec.name }, (performance.now() - since) / 1000);
      metrics.lag.set({ processor: spec.name, topic, partition: String(partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(uncommitted) - 1n)));
      uncommitted = undefined;
      since = performance.now();
      await heartbeat();
    };

    try {
      for (let i = start; i < batch.messages.length; i += cfg.batchSize) {
        if (isStale() || fenced()) {
          // The partition was revoked, or this member dropped: commit nothing more; the owner re-reads from the last commit.
          await abandon();
          return;
        }
        if (!isRunning() || member.rebalancing) {
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
        out.add(topicMessages);
        if (out.inFlight() >= cfg.maxInFlightBatches) await flush();
      }
      await flush();
    } catch (err) {
      // A failed transaction or send (or a chunk that failed part-way): the batch is read again from the last commit.
      spec.checkpoint?.abandoned();
      throw err;
    }
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
      await commits.disconnect();
      resolveDone();
      logger.info('stopped');
    },
  };
}
