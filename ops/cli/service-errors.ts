/**
 * An error from a service the command could not reach, in one line naming the service, the address and the variable
 * to check; undefined for any other error. The CLI prints this instead of a stack (IPT_DEBUG=1 keeps the stack).
 */
export function unreachableService(err: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chain: { name?: string; message?: string; code?: string }[] = [];
  for (let e = err as { name?: string; message?: string; code?: string; cause?: unknown; originalError?: unknown } | undefined; e && chain.length < 8; e = (e.cause ?? e.originalError) as typeof e) chain.push(e);
  const text = chain.map((e) => `${e.name ?? ''} ${e.message ?? ''} ${e.code ?? ''}`).join(' | ');
  const code = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/.exec(text)?.[1];
  if (/KafkaJSConnectionError|KafkaJSNumberOfRetriesExceeded.*Connection|Failed to connect to seed broker/.test(text)) {
    const brokers = env.IPT_KAFKA_BROKERS ?? '127.0.0.1:9092';
    return `cannot reach Kafka at ${brokers}${code ? ` (${code})` : ''}: check IPT_KAFKA_BROKERS, or start the local stack with \`ipt stack up\``;
  }
  if (/Confluent_Schema_Registry|schema registry/i.test(text) && code) {
    return `cannot reach the schema registry at ${env.IPT_REGISTRY_URL ?? 'http://127.0.0.1:8081'} (${code}): check IPT_REGISTRY_URL, or start the local stack with \`ipt stack up\``;
  }
  if (/ClickHouse|clickhouse/.test(text) && code) {
    return `cannot reach ClickHouse at ${env.IPT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123'} (${code}): check IPT_CLICKHOUSE_URL, or start the local stack with \`ipt stack up\``;
  }
  return undefined;
}
