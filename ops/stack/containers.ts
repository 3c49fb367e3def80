import { createServer, type AddressInfo } from 'node:net';
import { GenericContainer, Network, Wait, type StartedTestContainer } from 'testcontainers';
import { brokerImageEnv } from './broker-settings.ts';
import type { StackEndpoints } from './stack-config.ts';

// The same roles and versions as docker-compose.yml.
const KAFKA_IMAGE = 'apache/kafka:4.4.0';
const REGISTRY_IMAGE = 'confluentinc/cp-schema-registry:7.7.1';
const CLICKHOUSE_IMAGE = 'clickhouse/clickhouse-server:24.8';

const started: StartedTestContainer[] = [];

/** A port free on this host now: the broker must advertise the port clients reach it on, so it is chosen first. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs Kafka (KRaft), the Confluent schema registry and ClickHouse as containers, on host ports free at the time;
 * used when a Docker engine is reachable and no stack answers on the default ports. The broker has the settings of
 * every other way of running it (broker-settings.ts).
 */
export async function startContainers(log: (l: string) => void): Promise<StackEndpoints> {
  const network = await new Network().start();
  const hostPort = await freePort();
  log('testcontainers: starting kafka');
  const kafka = await new GenericContainer(KAFKA_IMAGE)
    .withNetwork(network)
    .withNetworkAliases('kafka')
    .withExposedPorts({ container: hostPort, host: hostPort })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `INTERNAL://:9092,EXTERNAL://:${hostPort},CONTROLLER://:9093`,
      KAFKA_ADVERTISED_LISTENERS: `INTERNAL://kafka:9092,EXTERNAL://localhost:${hostPort}`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@kafka:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      ...brokerImageEnv(),
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  started.push(kafka);
  log('testcontainers: starting schema registry');
  const registry = await new GenericContainer(REGISTRY_IMAGE)
    .withNetwork(network)
    .withExposedPorts(8081)
    .withEnvironment({
      SCHEMA_REGISTRY_HOST_NAME: 'schema-registry',
      SCHEMA_REGISTRY_LISTENERS: 'http://0.0.0.0:8081',
      SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: 'PLAINTEXT://kafka:9092',
      // One broker: the registry's own topic cannot have the default three replicas.
      SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR: '1',
      SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL: 'backward',
    })
    .withWaitStrategy(Wait.forHttp('/subjects', 8081))
    .start();
  started.push(registry);
  log('testcontainers: starting clickhouse');
  const clickhouse = await new GenericContainer(CLICKHOUSE_IMAGE).withExposedPorts(8123).withWaitStrategy(Wait.forHttp('/ping', 8123)).start();
  started.push(clickhouse);
  return {
    brokers: [`localhost:${hostPort}`],
    registryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8081)}`,
    clickhouseUrl: `http://${clickhouse.getHost()}:${clickhouse.getMappedPort(8123)}`,
    source: 'testcontainers',
  };
}

export async function stopContainers(): Promise<void> {
  for (const c of started.reverse()) await c.stop();
  started.length = 0;
}
