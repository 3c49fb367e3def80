import { setting, type SettingName } from '../../processors/runtime/settings.ts';

/** A setting's value for a message: as validated at start-up, or the raw text where it is not valid. */
function shown(name: SettingName, env: NodeJS.ProcessEnv, unset: string): string {
  try {
    const v = setting(name, env);
    return v === undefined ? unset : Array.isArray(v) ? v.join(',') : String(v);
  } catch {
    return String(env[name]);
  }
}

/**
 * An error from a service the command could not reach, in one line naming the service, the address and the variable
 * to check; undefined for any other error. The CLI prints this instead of a stack (IPT_DEBUG=1 keeps the stack).
 */
export function unreachableService(err: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chain: { name?: string; message?: string; code?: string }[] = [];
  for (let e = err as { name?: string; message?: string; code?: string; cause?: unknown; originalError?: unknown } | undefined; e && chain.length < 8; e = (e.cause ?? e.originalError) as typeof e) chain.push(e);
  const text = chain.map((e) => `${e.name ?? ''} ${e.message ?? ''} ${e.code ?? ''}`).join(' | ');
  const security = kafkaSecurityProblem(text, env);
  if (security) return security;
  const code = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/.exec(text)?.[1];
  if (/KafkaJSConnectionError|KafkaJSNumberOfRetriesExceeded.*Connection|Failed to connect to seed broker/.test(text)) {
    const brokers = shown('IPT_KAFKA_BROKERS', env, '');
    return `cannot reach Kafka at ${brokers}${code ? ` (${code})` : ''}: check IPT_KAFKA_BROKERS, or start the local stack with \`ipt stack up\``;
  }
  if (/Confluent_Schema_Registry|schema registry/i.test(text) && code) {
    return `cannot reach the schema registry at ${shown('IPT_REGISTRY_URL', env, '')} (${code}): check IPT_REGISTRY_URL, or start the local stack with \`ipt stack up\``;
  }
  if (/ClickHouse|clickhouse/.test(text) && code) {
    return `cannot reach ClickHouse at ${shown('IPT_CLICKHOUSE_URL', env, '')} (${code}): check IPT_CLICKHOUSE_URL, or start the local stack with \`ipt stack up\``;
  }
  return undefined;
}

const TLS_TRUST = /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED/i;
const TLS_PROTOCOL = /wrong version number|EPROTO|packet length too long|ssl3_get_record|tlsv1 alert|handshake failure/i;

/** Kafka refused who we are or how we speak: one line naming the variable to check, never a secret. */
function kafkaSecurityProblem(text: string, env: NodeJS.ProcessEnv): string | undefined {
  const brokers = shown('IPT_KAFKA_BROKERS', env, '');
  if (/KafkaJSSASLAuthenticationError|SASL .*authentication failed|Authentication failed/i.test(text)) {
    const mech = shown('IPT_KAFKA_SASL_MECHANISM', env, '(unset)');
    const user = shown('IPT_KAFKA_SASL_USERNAME', env, '(unset)');
    return `Kafka authentication failed at ${brokers} (SASL ${mech} as ${user}): check IPT_KAFKA_SASL_USERNAME and IPT_KAFKA_SASL_PASSWORD, and IPT_KAFKA_SASL_MECHANISM`;
  }
  if (/KafkaJSConnectionError/.test(text) && TLS_TRUST.test(text)) {
    const reason = TLS_TRUST.exec(text)![0];
    return `TLS with Kafka at ${brokers} failed: the broker's certificate is not trusted (${reason}): check IPT_KAFKA_SSL_CA_FILE (the CA that signed the brokers' certificates)`;
  }
  if (/KafkaJSConnectionError/.test(text) && TLS_PROTOCOL.test(text)) {
    return `TLS with Kafka at ${brokers} failed (${TLS_PROTOCOL.exec(text)![0]}): the listener may not speak TLS; check IPT_KAFKA_SECURITY_PROTOCOL`;
  }
  if (/Closed connection|Connection closed by the server|KafkaJSNumberOfRetriesExceeded.*closed/i.test(text) && /Kafka/.test(text)) {
    return `Kafka at ${brokers} closed the connection: the listener may require TLS or SASL; check IPT_KAFKA_SECURITY_PROTOCOL (now ${shown('IPT_KAFKA_SECURITY_PROTOCOL', env, '')}) and the IPT_KAFKA_SASL_* variables`;
  }
  const denied = /(TOPIC|GROUP|CLUSTER|TRANSACTIONAL_ID)_AUTHORIZATION_FAILED|Not authorized to access (topics|group)|Cluster authorization failed|Transactional Id authorization failed/i.exec(text);
  if (denied) {
    return `Kafka refused an operation at ${brokers} (${denied[0]}) for ${shown('IPT_KAFKA_SASL_USERNAME', env, 'this client')}: the principal lacks an ACL; see docs/operations.md#acls for the ones a deployment needs`;
  }
  return undefined;
}
