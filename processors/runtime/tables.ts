import type { Kafka } from 'kafkajs';
import type { AvroSerde } from './serde.ts';
import { TopicTable, type FollowSource } from './topic-table.ts';
import { ReadBackTable } from './read-back-table.ts';
import type { TopicSource } from './topic-scan.ts';

/**
 * The port through which stages read topics as tables: followed (TopicTable) or read back by key (ReadBackTable).
 * The application hands the Kafka one; the broker-less test driver one over its in-memory topics.
 */
export interface Tables {
  follow<V, K = string>(topic: string, schema: string, keyOf: (value: V) => K | undefined): TopicTable<V, K>;
  readBack<V, K = string>(topic: string, schema: string, keyOf: (value: V) => K | undefined, opts?: { maxHeld?: number }): ReadBackTable<V, K>;
}

/**
 * Tables over Kafka topics, decoded with the registry's serde. `onFailure` learns of a followed table that gave up
 * (its consumer crashed past its rebuilds): the stages reading it cannot go on, so whoever runs them stops them.
 */
export function kafkaTables(kafka: Kafka, serde: AvroSerde, onFailure?: (topic: string, err: Error) => void): Tables {
  return {
    follow: (topic, schema, keyOf) => {
      const table = new TopicTable(kafka, serde, topic, schema, keyOf);
      if (onFailure) table.onFailure = (err) => onFailure(topic, err);
      return table;
    },
    readBack: (topic, schema, keyOf, opts) => new ReadBackTable(kafka, serde, topic, schema, keyOf, opts),
  };
}

/** Tables over other sources (the test driver's memory), with the codec their values are in. */
export function sourcedTables(codec: Pick<AvroSerde, 'prefetch' | 'decode'>, sources: { follow(topic: string): FollowSource; scan(topic: string): TopicSource }): Tables {
  return {
    follow: (topic, schema, keyOf) => new TopicTable(undefined, codec, topic, schema, keyOf, sources.follow(topic)),
    readBack: (topic, schema, keyOf, opts) => new ReadBackTable(undefined, codec, topic, schema, keyOf, { ...opts, source: sources.scan(topic) }),
  };
}
