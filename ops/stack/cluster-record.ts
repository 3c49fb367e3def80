import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * What a stack folder's cluster was created as. Data formatted for one shape (node count, addresses, security)
 * cannot be started as another, and `status`/`down`/chaos helpers need to find the nodes without being told again.
 */
export interface ClusterRecord {
  brokers: number;
  secure: boolean;
  net: 'netns' | 'loopback';
  /** First three octets of the /24 the namespaces sit on (netns only). */
  subnet?: string;
  ports: { client: number; internal: number; controller: number };
  /** KRaft cluster id every node was formatted with. */
  clusterId: string;
}

export function clusterRecordPath(stackDir: string): string {
  return join(stackDir, 'kafka', 'cluster.json');
}

export function readClusterRecord(stackDir: string): ClusterRecord | undefined {
  const file = clusterRecordPath(stackDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterRecord;
  } catch {
    throw new Error(`${file} is not valid JSON: delete it with \`ipt stack down --wipe\``);
  }
}

export function writeClusterRecord(stackDir: string, rec: ClusterRecord): void {
  const file = clusterRecordPath(stackDir);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(rec, null, 2)}\n`);
}

export function removeClusterRecord(stackDir: string): void {
  rmSync(clusterRecordPath(stackDir), { force: true });
}
