import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The super user clients and tools use, and the application user that starts with no ACLs at all. */
export const ADMIN_USER = 'admin';
export const APP_USER = 'ipt-app';

export interface ClusterSecrets {
  /** SCRAM (and PLAIN) password of ADMIN_USER. */
  admin: string;
  /** SCRAM (and PLAIN) password of APP_USER. */
  app: string;
  /** Password of the nodes' PKCS12 key and trust stores. */
  store: string;
}

export function secretsFile(kafkaDir: string): string {
  return join(kafkaDir, 'secrets.json');
}

/** Generated once per stack folder and kept (owner-only), so credentials survive restarts and re-formats. */
export function ensureSecrets(kafkaDir: string): ClusterSecrets {
  const file = secretsFile(kafkaDir);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as ClusterSecrets;
  // Hex: safe inside StorageTool's `[name=…,password=…]`, JAAS option values and env files without quoting.
  const secret = () => randomBytes(16).toString('hex');
  const secrets: ClusterSecrets = { admin: secret(), app: secret(), store: secret() };
  mkdirSync(kafkaDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}
