import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { startSecureCluster, type ClusterHarness } from './cluster-harness.ts';
import { clusterStatus, isolateNode, reconnectNode } from '../../ops/stack/cluster.ts';
import { clusterLayout } from '../../ops/stack/cluster-layout.ts';
import { isCluster, stackConfig } from '../../ops/stack/stack-config.ts';

const log = (l: string) => process.stderr.write(`${l}\n`);
const topicName = (p: string) => `${p}.${randomUUID().slice(0, 8)}`;

/** Reads a topic from the beginning until `distinct` different values were seen (60 s at most). */
async function readValues(kafka: Kafka, topic: string, distinct: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: topicName('cluster.group') });
  await consumer.connect();
  const seen: string[] = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${new Set(seen).size} of ${distinct} values of ${topic} in 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value!.toString());
          if (new Set(seen).size >= distinct) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe('cluster configuration', () => {
  it('keeps the single PLAINTEXT broker by default and validates the cluster settings', () => {
    const single = stackConfig({}, '/nonexistent');
    expect({ brokers: single.brokers, secure: single.secure, port: single.kafkaPort, heap: single.kafkaHeap, kafka: single.kafkaVersion }).toEqual({ brokers: 1, secure: false, port: 9092, heap: '1g', kafka: '4.4.0' });
    expect(isCluster(single)).toBe(false);
    const three = stackConfig({ IPT_STACK_BROKERS: '3', IPT_STACK_SECURE: 'true', IPT_STACK_SERVICES: 'kafka' }, '/nonexistent');
    expect({ brokers: three.brokers, secure: three.secure, heap: three.kafkaHeap, services: three.services }).toEqual({ brokers: 3, secure: true, heap: '384m', services: ['kafka'] });
    expect(() => stackConfig({ IPT_STACK_BROKERS: '0' })).toThrow(/IPT_STACK_BROKERS/);
    expect(() => stackConfig({ IPT_STACK_SECURE: 'maybe' })).toThrow(/IPT_STACK_SECURE/);
    expect(() => stackConfig({ IPT_STACK_NETNS: 'sometimes' })).toThrow(/IPT_STACK_NETNS/);
    expect(() => stackConfig({ IPT_STACK_SERVICES: 'kafka,zookeeper' })).toThrow(/IPT_STACK_SERVICES/);
    expect(() => stackConfig({ IPT_KAFKA_HEAP: 'big' })).toThrow(/IPT_KAFKA_HEAP/);
  });

  it('gives loopback nodes distinct ports and refuses overlapping ones', () => {
    const cfg = stackConfig({ IPT_STACK_BROKERS: '3', IPT_KAFKA_PORT: '20092', IPT_KAFKA_CONTROLLER_PORT: '20093', IPT_KAFKA_INTERNAL_PORT: '20094' }, '/nonexistent');
    const nodes = clusterLayout(cfg, { net: 'loopback', ignoreRecord: true }).nodes;
    expect(nodes.map((n) => [n.name, n.host, n.clientPort, n.controllerPort])).toEqual([
      ['kafka-1', '127.0.0.1', 20092, 20093],
      ['kafka-2', '127.0.0.1', 20102, 20103],
      ['kafka-3', '127.0.0.1', 20112, 20113],
    ]);
    const clash = stackConfig({ IPT_STACK_BROKERS: '3', IPT_KAFKA_PORT: '20092', IPT_KAFKA_CONTROLLER_PORT: '20102' }, '/nonexistent');
    expect(() => clusterLayout(clash, { net: 'loopback', ignoreRecord: true })).toThrow(/would both bind/);
  });
});

describe('local 3-node secure cluster', () => {
  // One cluster for the whole block: three JVMs with TLS take a while to start on two cores.
  let h: ClusterHarness;
  const isolated = new Set<number>();

  beforeAll(async () => {
    h = await startSecureCluster({ log });
    log(`cluster: ready in ${h.startupSeconds.toFixed(1)} s (${h.net}) at ${h.brokers.join(',')}`);
  });

  afterAll(async () => {
    if (!h) return;
    for (const i of isolated) reconnectNode(h.cfg, i);
    // IPT_CLUSTER_KEEP=1 leaves it running for the next run (reused while healthy).
    if (!process.env.IPT_CLUSTER_KEEP) await h.stop();
  });

  it('runs three healthy nodes, each with its own address and pid', async () => {
    const st = await clusterStatus(h.cfg);
    expect(st.map((s) => s.name)).toEqual(['kafka-1', 'kafka-2', 'kafka-3']);
    expect(st.every((s) => s.healthy && s.pid !== undefined)).toBe(true);
    expect(new Set(st.map((s) => s.endpoint)).size).toBe(3);
    expect(h.adminEnv).toMatchObject({ IPT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', IPT_KAFKA_SASL_MECHANISM: 'scram-sha-512', IPT_KAFKA_SASL_USERNAME: 'admin' });
    expect(h.appEnv.IPT_KAFKA_SASL_USERNAME).toBe('ipt-app');
    expect(h.appEnv.IPT_KAFKA_SASL_PASSWORD).not.toBe(h.adminEnv.IPT_KAFKA_SASL_PASSWORD);
  });

  it('lets the admin create an RF 3 topic and produce and consume over SASL_SSL with SCRAM-SHA-512', async () => {
    // Configured by hand from the env file: TLS with the stack's CA, SCRAM-SHA-512.
    const kafka = new Kafka({
      brokers: h.adminEnv.IPT_KAFKA_BROKERS!.split(','),
      clientId: 'local-cluster-test',
      logLevel: logLevel.NOTHING,
      ssl: { ca: [h.ca] },
      sasl: { mechanism: 'scram-sha-512', username: h.adminEnv.IPT_KAFKA_SASL_USERNAME!, password: h.adminEnv.IPT_KAFKA_SASL_PASSWORD! },
    });
    const topic = topicName('cluster.rf3');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 3 }], waitForLeaders: true });
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      for (const p of meta.topics[0]!.partitions) expect(p.replicas).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) });
    await producer.disconnect();

    const seen = await readValues(kafka, topic, 10);
    expect(seen.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`).sort());
  });

  it('refuses a wrong password', async () => {
    const admin = h.kafka({ ...h.adminEnv, IPT_KAFKA_SASL_PASSWORD: 'not-the-password' }, { retry: { retries: 0 } }).admin();
    await expect(admin.connect()).rejects.toMatchObject({ name: 'KafkaJSSASLAuthenticationError' });
    await admin.disconnect().catch(() => undefined);
  });

  it('authenticates ipt-app but, without ACLs, refuses it with an authorization error', async () => {
    const topic = topicName('cluster.acl');
    const admin = h.kafka(h.adminEnv).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, replicationFactor: 3 }], waitForLeaders: true });
    await admin.disconnect();

    const app = h.kafka(h.appEnv, { retry: { retries: 0 } });
    const producer = app.producer();
    await producer.connect(); // authentication succeeds
    try {
      await expect(producer.send({ topic, messages: [{ value: 'x' }] })).rejects.toThrow(/authoriz/i);
    } finally {
      await producer.disconnect();
    }
    const appAdmin = app.admin();
    await appAdmin.connect();
    try {
      const err = await appAdmin.createTopics({ topics: [{ topic: topicName('cluster.acl-create') }] }).then(() => undefined, (e: unknown) => e);
      const errors = (err as { errors?: { type?: string }[] } | undefined)?.errors ?? [];
      expect(errors.map((e) => e.type)).toContain('TOPIC_AUTHORIZATION_FAILED');
    } finally {
      await appAdmin.disconnect();
    }
  });

  it('keeps an RF 3 topic writable with acks=-1 while one node is cut off, and takes it back', async (ctx) => {
    if (h.net !== 'netns') ctx.skip();
    const topic = topicName('cluster.isolate');
    const admin = h.kafka(h.adminEnv).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true });
      // Cut off the leader of partition 0, so that the test also covers a leader moving.
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const victim = meta.topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
      const others = clusterLayout(h.cfg).nodes.filter((n) => n.id !== victim).map((n) => `${n.host}:${n.clientPort}`);

      isolateNode(h.cfg, victim);
      isolated.add(victim);
      const t0 = Date.now();
      // Connected only after the cut, so it never holds a connection to the lost node (kafkajs keeps retrying a
      // black-holed connection instead of refreshing metadata); the request timeout exceeds the broker's acks=-1 wait.
      const producer = h.kafka({ ...h.adminEnv, IPT_KAFKA_BROKERS: others.join(',') }, {
        connectionTimeout: 2000,
        requestTimeout: 30_000,
        retry: { retries: 15, initialRetryTime: 500, maxRetryTime: 5000 },
      }).producer();
      await producer.connect();
      try {
        for (let r = 0; r < 3; r++) {
          await producer.send({ topic, acks: -1, timeout: 20_000, messages: [0, 1, 2].map((partition) => ({ partition, value: `r${r}p${partition}` })) });
        }
      } finally {
        await producer.disconnect();
      }
      log(`cluster: 9 records written with acks=-1 ${((Date.now() - t0) / 1000).toFixed(1)} s after cutting off kafka-${victim}`);

      reconnectNode(h.cfg, victim);
      isolated.delete(victim);
      // Back in every partition's ISR once it has caught up.
      const deadline = Date.now() + 120_000;
      for (;;) {
        const parts = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions;
        if (parts.every((p) => p.isr.includes(victim))) break;
        if (Date.now() > deadline) throw new Error(`kafka-${victim} did not rejoin the ISR within 120 s: ${JSON.stringify(parts)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      // Every acknowledged record is there (a retried send may have added a duplicate: not idempotent).
      const values = await readValues(h.kafka(h.adminEnv), topic, 9);
      expect([...new Set(values)].sort()).toEqual([0, 1, 2].flatMap((r) => [0, 1, 2].map((p) => `r${r}p${p}`)).sort());
      const st = await clusterStatus(h.cfg);
      expect(st.every((s) => s.healthy)).toBe(true);
    } finally {
      await admin.disconnect();
    }
  });
});
