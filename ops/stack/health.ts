import { Kafka, logLevel } from 'kafkajs';

/** True when the broker answers a metadata request (a controller has been elected and the broker registered). */
export async function kafkaHealthy(brokers: string[]): Promise<boolean> {
  const admin = new Kafka({ brokers, clientId: 'ipt-health', logLevel: logLevel.NOTHING, connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null && cluster.controller !== undefined;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export const registryHealthy = (registryUrl: string) => httpOk(`${registryUrl}/config`);
export const clickhouseHealthy = (clickhouseUrl: string) => httpOk(`${clickhouseUrl}/ping`);
