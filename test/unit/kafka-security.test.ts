import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeSecurity, kafkaSecurity } from '../../processors/runtime/kafka-security.ts';
import { ConfigError } from '../../processors/runtime/config-error.ts';
import { replicationFactor } from '../../processors/runtime/topics.ts';
import { clickhouseCredentials, registryCredentials } from '../../processors/runtime/service-credentials.ts';
import { unreachableService } from '../../ops/cli/service-errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipt-sec-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const key = join(dir, 'client.key');
writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n');
const scram = { IPT_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', IPT_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', IPT_KAFKA_SASL_USERNAME: 'ipt', IPT_KAFKA_SASL_PASSWORD: 'hunter2', IPT_KAFKA_SSL_CA_FILE: ca };

describe('Kafka security settings', () => {
  it('is plaintext with nothing set', () => {
    expect(kafkaSecurity({})).toEqual({ protocol: 'plaintext' });
  });

  it('takes Kafka names case-insensitively: SASL_SSL + SCRAM with the CA of the deployment', () => {
    const s = kafkaSecurity(scram);
    expect(s.protocol).toBe('sasl_ssl');
    expect(s.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'ipt', password: 'hunter2' });
    expect(s.ssl).toEqual({ ca: [expect.stringContaining('BEGIN CERTIFICATE')] });
    expect(describeSecurity(s)).toBe('sasl_ssl, scram-sha-512 as ipt, own CA');
  });

  it('uses the system CAs when no CA file is given, and a client certificate for mutual TLS', () => {
    expect(kafkaSecurity({ IPT_KAFKA_SECURITY_PROTOCOL: 'ssl' }).ssl).toBe(true);
    const m = kafkaSecurity({ IPT_KAFKA_SECURITY_PROTOCOL: 'ssl', IPT_KAFKA_SSL_CERT_FILE: ca, IPT_KAFKA_SSL_KEY_FILE: key });
    expect(m.ssl).toMatchObject({ cert: expect.stringContaining('CERTIFICATE'), key: expect.stringContaining('PRIVATE KEY') });
    expect(m.sasl).toBeUndefined();
  });

  it.each([
    [{ IPT_KAFKA_SECURITY_PROTOCOL: 'tls' }, /IPT_KAFKA_SECURITY_PROTOCOL=tls: expected one of plaintext, ssl, sasl_plaintext, sasl_ssl/],
    [{ IPT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl' }, /needs IPT_KAFKA_SASL_MECHANISM/],
    [{ ...scram, IPT_KAFKA_SASL_MECHANISM: 'gssapi' }, /IPT_KAFKA_SASL_MECHANISM=gssapi: expected one of/],
    [{ ...scram, IPT_KAFKA_SASL_PASSWORD: '' }, /needs IPT_KAFKA_SASL_PASSWORD/],
    [{ IPT_KAFKA_SASL_USERNAME: 'x' }, /IPT_KAFKA_SASL_USERNAME set but IPT_KAFKA_SECURITY_PROTOCOL=plaintext/],
    [{ IPT_KAFKA_SSL_CA_FILE: ca }, /IPT_KAFKA_SSL_CA_FILE set but IPT_KAFKA_SECURITY_PROTOCOL=plaintext/],
    [{ ...scram, IPT_KAFKA_SSL_CA_FILE: join(dir, 'missing.pem') }, /IPT_KAFKA_SSL_CA_FILE=.*missing.pem: cannot read it \(ENOENT\)/],
    [{ ...scram, IPT_KAFKA_SSL_CA_FILE: key }, /IPT_KAFKA_SSL_CA_FILE=.*: not a PEM certificate/],
    [{ IPT_KAFKA_SECURITY_PROTOCOL: 'ssl', IPT_KAFKA_SSL_CERT_FILE: ca }, /IPT_KAFKA_SSL_CERT_FILE and IPT_KAFKA_SSL_KEY_FILE go together/],
  ])('refuses %j with a message naming the variable', (env, message) => {
    expect(() => kafkaSecurity(env)).toThrow(ConfigError);
    expect(() => kafkaSecurity(env)).toThrow(message);
  });

  it('never puts the password in an error', () => {
    try {
      kafkaSecurity({ ...scram, IPT_KAFKA_SASL_MECHANISM: 'md5' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('replication factor', () => {
  it('is min(3, brokers) unless set, and cannot exceed the brokers', () => {
    expect(replicationFactor(1, {})).toBe(1);
    expect(replicationFactor(3, {})).toBe(3);
    expect(replicationFactor(5, {})).toBe(3);
    expect(replicationFactor(5, { IPT_TOPIC_REPLICATION_FACTOR: '5' })).toBe(5);
    expect(() => replicationFactor(1, { IPT_TOPIC_REPLICATION_FACTOR: '3' })).toThrow('IPT_TOPIC_REPLICATION_FACTOR=3 but the cluster has 1 broker');
    expect(() => replicationFactor(3, { IPT_TOPIC_REPLICATION_FACTOR: 'two' })).toThrow(ConfigError);
  });
});

describe('registry and ClickHouse credentials', () => {
  it('come in pairs', () => {
    expect(registryCredentials({})).toBeUndefined();
    expect(registryCredentials({ IPT_REGISTRY_USERNAME: 'a', IPT_REGISTRY_PASSWORD: 'b' })).toEqual({ username: 'a', password: 'b' });
    expect(() => clickhouseCredentials({ IPT_CLICKHOUSE_PASSWORD: 'b' })).toThrow('IPT_CLICKHOUSE_USERNAME and IPT_CLICKHOUSE_PASSWORD go together');
  });
});

describe('security failures in one line', () => {
  const env = { IPT_KAFKA_BROKERS: 'k1:9094', IPT_KAFKA_SASL_MECHANISM: 'scram-sha-512', IPT_KAFKA_SASL_USERNAME: 'ipt', IPT_KAFKA_SASL_PASSWORD: 'hunter2' };
  it('says authentication failed and names the variables, without the password', () => {
    const err = Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'), { name: 'KafkaJSSASLAuthenticationError' });
    const line = unreachableService(err, env)!;
    expect(line).toBe('Kafka authentication failed at k1:9094 (SASL scram-sha-512 as ipt): check IPT_KAFKA_SASL_USERNAME and IPT_KAFKA_SASL_PASSWORD, and IPT_KAFKA_SASL_MECHANISM');
    expect(line).not.toContain('hunter2');
  });

  it('says TLS failed when the certificate is not trusted, and names the CA variable', () => {
    const err = Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), { name: 'KafkaJSConnectionError', code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(unreachableService(err, env)).toMatch(/^TLS with Kafka at k1:9094 failed: the broker's certificate is not trusted .*check IPT_KAFKA_SSL_CA_FILE/);
  });
});
