export type DeniedType = 'TOPIC' | 'GROUP' | 'CLUSTER' | 'TRANSACTIONAL_ID';

const DENIED = /\b(TOPIC|GROUP|CLUSTER|TRANSACTIONAL_ID)_AUTHORIZATION_FAILED\b/;
// kafkajs's messages for the same broker answers.
const MESSAGES: [RegExp, DeniedType][] = [
  [/Not authorized to access topics/i, 'TOPIC'],
  [/Not authorized to access group/i, 'GROUP'],
  [/Transactional Id authorization failed/i, 'TRANSACTIONAL_ID'],
  [/Cluster authorization failed/i, 'CLUSTER'],
];

/** The authorization failure in an error or its causes (kafkajs wraps the broker's answer), if there is one. */
export function deniedType(err: unknown): DeniedType | undefined {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown; message?: string } | undefined, n = 0; e && n < 8; e = (e.originalError ?? e.cause) as typeof e, n++) {
    const m = DENIED.exec(`${e.type ?? ''} ${e.message ?? ''}`);
    if (m) return m[1] as DeniedType;
    for (const [re, type] of MESSAGES) if (re.test(e.message ?? '')) return type;
    // KafkaJSAggregateError (topic creation): one error per topic.
    const inner = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(inner)) for (const x of inner) {
      const t = deniedType(x);
      if (t) return t;
    }
  }
  return undefined;
}
