import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { ConfigError } from './config-error.ts';
import { isSet, setting, type SettingName } from './settings.ts';

/** Kafka's own names for how a client talks to the brokers. */
export type SecurityProtocol = 'plaintext' | 'ssl' | 'sasl_plaintext' | 'sasl_ssl';
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How every Kafka client of the process connects: read from the environment once, checked before any connection. */
export interface KafkaSecurity {
  protocol: SecurityProtocol;
  /** kafkajs's `ssl`: true (system CAs) or TLS options (a CA of the deployment's own, a client certificate). */
  ssl?: true | ConnectionOptions;
  sasl?: SASLOptions & { mechanism: SaslMechanism };
}

const MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

/** A PEM file's text, with an error that names the variable when it is missing or not PEM. */
function pem(env: NodeJS.ProcessEnv, name: 'IPT_KAFKA_SSL_CA_FILE' | 'IPT_KAFKA_SSL_CERT_FILE' | 'IPT_KAFKA_SSL_KEY_FILE', kind: 'CERTIFICATE' | 'PRIVATE KEY'): string | undefined {
  const path = setting(name, env);
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}=${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const re = kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;
  if (!re.test(text)) throw new ConfigError(`${name}=${path}: not a PEM ${kind.toLowerCase()} (expected a "-----BEGIN ${kind}-----" block)`);
  return text;
}

export function kafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const protocol: SecurityProtocol = setting('IPT_KAFKA_SECURITY_PROTOCOL', env);
  const tls = protocol === 'ssl' || protocol === 'sasl_ssl';
  const sasl = protocol === 'sasl_plaintext' || protocol === 'sasl_ssl';

  const sslVars = (['IPT_KAFKA_SSL_CA_FILE', 'IPT_KAFKA_SSL_CERT_FILE', 'IPT_KAFKA_SSL_KEY_FILE'] as SettingName[]).filter((n) => isSet(n, env));
  if (!tls && sslVars.length > 0) throw new ConfigError(`${sslVars.join(', ')} set but IPT_KAFKA_SECURITY_PROTOCOL=${protocol}: TLS settings need ssl or sasl_ssl`);
  const saslVars = (['IPT_KAFKA_SASL_MECHANISM', 'IPT_KAFKA_SASL_USERNAME', 'IPT_KAFKA_SASL_PASSWORD'] as SettingName[]).filter((n) => isSet(n, env));
  if (!sasl && saslVars.length > 0) throw new ConfigError(`${saslVars.join(', ')} set but IPT_KAFKA_SECURITY_PROTOCOL=${protocol}: SASL settings need sasl_plaintext or sasl_ssl`);

  const out: KafkaSecurity = { protocol };
  if (tls) {
    const ca = pem(env, 'IPT_KAFKA_SSL_CA_FILE', 'CERTIFICATE');
    const cert = pem(env, 'IPT_KAFKA_SSL_CERT_FILE', 'CERTIFICATE');
    const key = pem(env, 'IPT_KAFKA_SSL_KEY_FILE', 'PRIVATE KEY');
    if ((cert === undefined) !== (key === undefined)) throw new ConfigError('IPT_KAFKA_SSL_CERT_FILE and IPT_KAFKA_SSL_KEY_FILE go together (mutual TLS): set both or neither');
    // Without a CA file the system's CAs verify the brokers, as Node does for any TLS connection.
    out.ssl = ca === undefined && cert === undefined ? true : { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert, key } : {}) };
  }
  if (sasl) {
    const mechanism: SaslMechanism | undefined = setting('IPT_KAFKA_SASL_MECHANISM', env);
    if (mechanism === undefined) throw new ConfigError(`IPT_KAFKA_SECURITY_PROTOCOL=${protocol} needs IPT_KAFKA_SASL_MECHANISM (${MECHANISMS.join(', ')})`);
    const username = setting('IPT_KAFKA_SASL_USERNAME', env);
    const password = setting('IPT_KAFKA_SASL_PASSWORD', env);
    const missing = [username === undefined ? 'IPT_KAFKA_SASL_USERNAME' : '', password === undefined ? 'IPT_KAFKA_SASL_PASSWORD' : ''].filter(Boolean);
    if (missing.length > 0) throw new ConfigError(`IPT_KAFKA_SASL_MECHANISM=${mechanism} needs ${missing.join(' and ')}`);
    out.sasl = { mechanism, username: username!, password: password! } as KafkaSecurity['sasl'];
  }
  return out;
}

/** The settings in words, for logs: protocol, mechanism and user, never the password or key. */
export function describeSecurity(s: KafkaSecurity): string {
  const parts: string[] = [s.protocol];
  if (s.sasl) parts.push(`${s.sasl.mechanism} as ${(s.sasl as { username: string }).username}`);
  if (s.ssl && s.ssl !== true) parts.push([s.ssl.ca ? 'own CA' : 'system CAs', s.ssl.cert ? 'client certificate' : ''].filter(Boolean).join(', '));
  return parts.join(', ');
}

let cached: { env: NodeJS.ProcessEnv; snapshot: string; security: KafkaSecurity } | undefined;

/** This process's settings, read once (re-read only if the variables change, as tests do). */
export function processKafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const snapshot = Object.keys(env)
    .filter((k) => k.startsWith('IPT_KAFKA_S'))
    .sort()
    .map((k) => `${k}=${env[k]}`)
    .join('\n');
  if (cached && cached.env === env && cached.snapshot === snapshot) return cached.security;
  const security = kafkaSecurity(env);
  cached = { env, snapshot, security };
  return security;
}
