import { JobError } from './job-error.ts';
import type { Kafka } from 'kafkajs';
import { processKafkaSecurity } from './kafka-security.ts';
import { recentDenial } from './kafka-client.ts';
import { deniedType } from './kafka-denial.ts';

export { deniedType };

/** Which Kafka operation was refused, on what: enough for an operator to add the missing ACL. */
export interface AccessContext {
  /** Topics this step reads (Read, Describe), with the consumer group it reads them in. */
  reads?: { topics: string[]; group?: string };
  /** Topics this step writes (Write). */
  writes?: string[];
  /** Topics this step creates (Create). */
  creates?: string[];
  transactionalId?: string;
}

function principal(): string {
  const sasl = processKafkaSecurity().sasl as { username?: string } | undefined;
  return sasl?.username ? `User:${sasl.username}` : 'this client';
}

/**
 * An authorization failure as an operator-facing error that names the operation and the resources it was refused on;
 * undefined for any other error. Such a failure does not heal by retrying: the stage stops with this message.
 */
export function accessDenied(err: unknown, ctx: AccessContext, kafka?: Kafka): JobError | undefined {
  const type = deniedType(err) ?? (kafka && coordinatorNotFound(err) ? recentDenial(kafka) : undefined);
  if (type === undefined) return undefined;
  const list = (xs: string[]) => xs.join(', ');
  const needs: string[] = [];
  switch (type) {
    case 'TOPIC':
      if (ctx.creates?.length) needs.push(`Create on Topic ${list(ctx.creates)}`);
      if (ctx.reads?.topics.length) needs.push(`Read and Describe on Topic ${list(ctx.reads.topics)}`);
      if (ctx.writes?.length) needs.push(`Write on Topic ${list(ctx.writes)}`);
      break;
    case 'GROUP':
      if (ctx.reads?.group) needs.push(`Read on Group ${ctx.reads.group}`);
      break;
    case 'TRANSACTIONAL_ID':
      if (ctx.transactionalId) needs.push(`Write and Describe on TransactionalId ${ctx.transactionalId}`);
      break;
    case 'CLUSTER':
      needs.push(ctx.creates?.length ? 'Create on Cluster (or Create on the topics themselves)' : ctx.transactionalId ? 'IdempotentWrite on Cluster' : 'Describe on Cluster');
      break;
  }
  const what = needs.length > 0 ? needs.join('; ') : `an ACL (${type}_AUTHORIZATION_FAILED)`;
  return new JobError(`Kafka denied ${principal()}: it needs ${what} (${type}_AUTHORIZATION_FAILED); grant it, see docs/security.md#acls`);
}

function coordinatorNotFound(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown; originalError?: unknown } | undefined, n = 0; e && n < 8; e = (e.originalError ?? e.cause) as typeof e, n++) {
    if (e.name === 'KafkaJSGroupCoordinatorNotFound') return true;
  }
  return false;
}
