import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { nodeAddress, type ClusterNode } from './cluster-layout.ts';

/** How a client authenticates to the cluster: nothing (PLAINTEXT) or SCRAM over TLS with the stack's CA. */
export interface ClusterAuth {
  username: string;
  password: string;
  caFile: string;
}

/** kafkajs options for the cluster: TLS with the stack's CA and SCRAM-SHA-512 when auth is given. */
export function kafkajsSecurity(auth: ClusterAuth | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (!auth) return {};
  return { ssl: { ca: [readFileSync(auth.caFile, 'utf8')] }, sasl: { mechanism: 'scram-sha-512', username: auth.username, password: auth.password } };
}

/**
 * A node is healthy when it answers a metadata request itself (TLS and SASL included when secure), lists itself
 * as a registered broker, and knows a controller.
 */
export async function nodeHealthy(node: ClusterNode, auth: ClusterAuth | undefined): Promise<boolean> {
  const brokers = await describe([nodeAddress(node)], auth);
  return brokers !== undefined && brokers.ids.includes(node.id) && brokers.controller !== undefined;
}

/** The registered brokers' ids as seen through the given bootstrap addresses, or undefined when none answers. */
export async function describe(addresses: string[], auth: ClusterAuth | undefined): Promise<{ ids: number[]; controller?: number } | undefined> {
  const admin = new Kafka({
    brokers: addresses,
    clientId: 'ipt-health',
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    authenticationTimeout: 5000,
    requestTimeout: 5000,
    retry: { retries: 0 },
    ...kafkajsSecurity(auth),
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const controller = cluster.controller === null || cluster.controller === undefined || cluster.controller < 0 ? undefined : cluster.controller;
    return { ids: cluster.brokers.map((b) => b.nodeId), controller };
  } catch {
    return undefined;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Something already accepts connections on host:port (before a start: another process holds the port). */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
