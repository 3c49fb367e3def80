import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackConfig } from './stack-config.ts';
import { ADMIN_USER, APP_USER, type ClusterSecrets } from './cluster-secrets.ts';
import { nodeAddress, type ClusterLayout } from './cluster-layout.ts';

export type ClusterUser = 'admin' | 'app';

/** `<stack dir>/kafka/client.env` (the super user) or `app.env` (ipt-app, no ACLs until granted). */
export function clientEnvPath(cfg: Pick<StackConfig, 'dir'>, who: ClusterUser = 'admin'): string {
  return join(cfg.dir, 'kafka', who === 'admin' ? 'client.env' : 'app.env');
}

/** KEY=value lines in the variables the runtime's Kafka client reads. */
export function writeClientEnvFiles(cfg: Pick<StackConfig, 'dir'>, layout: ClusterLayout, secrets: ClusterSecrets | undefined, caFile: string | undefined): void {
  const brokers = layout.nodes.map(nodeAddress).join(',');
  if (!layout.secure || !secrets || !caFile) {
    writeFileSync(clientEnvPath(cfg, 'admin'), `IPT_KAFKA_BROKERS=${brokers}\nIPT_KAFKA_SECURITY_PROTOCOL=plaintext\n`);
    return;
  }
  const env = (user: string, password: string) =>
    [
      `IPT_KAFKA_BROKERS=${brokers}`,
      'IPT_KAFKA_SECURITY_PROTOCOL=sasl_ssl',
      'IPT_KAFKA_SASL_MECHANISM=scram-sha-512',
      `IPT_KAFKA_SASL_USERNAME=${user}`,
      `IPT_KAFKA_SASL_PASSWORD=${password}`,
      `IPT_KAFKA_SSL_CA_FILE=${caFile}`,
      '',
    ].join('\n');
  writeFileSync(clientEnvPath(cfg, 'admin'), env(ADMIN_USER, secrets.admin), { mode: 0o600 });
  writeFileSync(clientEnvPath(cfg, 'app'), env(APP_USER, secrets.app), { mode: 0o600 });
}

/** Reads one of the cluster's client env files into an environment object (for child processes and tests). */
export function clusterClientEnv(cfg: Pick<StackConfig, 'dir'>, who: ClusterUser = 'admin'): Record<string, string> {
  const file = clientEnvPath(cfg, who);
  if (!existsSync(file)) throw new Error(`${file} does not exist: start the cluster first (ipt stack up --brokers 3 --secure with IPT_STACK_DIR=${cfg.dir})`);
  return parseEnvFile(readFileSync(file, 'utf8'));
}

export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.trim();
  }
  return env;
}
