/**
 * The broker settings every way of running Kafka shares (the native stack, the 3-node cluster, testcontainers and
 * docker-compose.yml, which a test checks against these): records up to 16 MiB (the pipeline writer's limit is
 * derived from the broker's), topics created by the stages only, records kept until deleted.
 */
export const BROKER_SETTINGS: Readonly<Record<string, string>> = {
  'message.max.bytes': '16777216',
  'replica.fetch.max.bytes': '16777216',
  'auto.create.topics.enable': 'false',
  'log.retention.hours': '-1',
  'group.initial.rebalance.delay.ms': '0',
};

/** As `key=value` lines of a server.properties file. */
export const brokerPropertyLines = (): string[] => Object.entries(BROKER_SETTINGS).map(([k, v]) => `${k}=${v}`);

/** As the apache/kafka image's environment (KAFKA_ + the property in upper case, dots as underscores). */
export const brokerImageEnv = (): Record<string, string> => Object.fromEntries(Object.entries(BROKER_SETTINGS).map(([k, v]) => [`KAFKA_${k.toUpperCase().replace(/\./g, '_')}`, v]));
