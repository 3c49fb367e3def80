import { describe, expect, it } from 'vitest';
import { unreachableService } from '../../ops/cli/service-errors.ts';

describe('unreachable services in one line', () => {
  it('names Kafka, the brokers and the variable for kafkajs connection failures', () => {
    const cause = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' });
    const err = Object.assign(new Error('KafkaJSNonRetriableError'), { name: 'KafkaJSNonRetriableError', cause });
    expect(unreachableService(err, { IPT_KAFKA_BROKERS: '127.0.0.1:1' })).toBe('cannot reach Kafka at 127.0.0.1:1 (ECONNREFUSED): check IPT_KAFKA_BROKERS, or start the local stack with `ipt stack up`');
  });

  it('names the registry and ClickHouse by their variables, and leaves other errors alone', () => {
    const registry = Object.assign(new Error('Confluent_Schema_Registry - Error, status 400: connect ECONNREFUSED 127.0.0.1:2'), { status: 400 });
    expect(unreachableService(registry, { IPT_REGISTRY_URL: 'http://127.0.0.1:2' })).toMatch(/^cannot reach the schema registry at http:\/\/127.0.0.1:2 \(ECONNREFUSED\): check IPT_REGISTRY_URL/);
    const ch = new Error('ClickHouse insert into x failed: connect ECONNREFUSED 127.0.0.1:3');
    expect(unreachableService(ch, {})).toMatch(/^cannot reach ClickHouse at http:\/\/127.0.0.1:8123 \(ECONNREFUSED\): check IPT_CLICKHOUSE_URL/);
    expect(unreachableService(new Error('something else'))).toBeUndefined();
  });
});
