import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterLayout, ClusterNode } from './cluster-layout.ts';
import { which } from './install.ts';

/** Node certificates carry this OU: the brokers map it to the one principal that is a super user (User:ipt-node). */
export const NODE_OU = 'ipt-node';
export const NODE_PRINCIPAL = 'ipt-node';

export interface ClusterTls {
  /** The stack's CA certificate (PEM): what clients trust. */
  caFile: string;
  truststore: string;
  keystore(node: ClusterNode): string;
}

function run(cmd: string, args: string[], cwd: string): void {
  try {
    execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/**
 * A CA of the stack's own (made once), a key and certificate per node signed by it whose SAN names the node's
 * address, PKCS12 key stores, and a PKCS12 trust store holding the CA. Remade only when an input changed
 * (a node's address, the store password, the CA), so restarts are cheap.
 */
export function ensureTls(layout: ClusterLayout, storePassword: string): ClusterTls {
  for (const bin of ['openssl', 'keytool']) if (!which(bin)) throw new Error(`a secure cluster needs ${bin} (apt-get install ${bin === 'openssl' ? 'openssl' : 'openjdk-17-jre-headless'})`);
  const dir = join(layout.kafkaDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  if (!existsSync(caKey) || !existsSync(caFile)) {
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '3650', '-sha256', '-config', cnf, '-extensions', 'v3_ca'], dir);
  }
  const ca = sha(readFileSync(caFile));
  const pw = sha(storePassword);

  const truststore = join(dir, 'truststore.p12');
  if (stale(join(dir, 'truststore.stamp'), `${ca}|${pw}`, truststore)) {
    rmSync(truststore, { force: true });
    run('keytool', ['-importcert', '-noprompt', '-alias', 'ipt-stack-ca', '-file', caFile, '-keystore', truststore, '-storetype', 'PKCS12', '-storepass', storePassword], dir);
    stamp(join(dir, 'truststore.stamp'), `${ca}|${pw}`);
  }

  const keystore = (node: ClusterNode) => join(dir, `${node.name}.p12`);
  for (const node of layout.nodes) {
    const san = [...new Set([`DNS:${node.name}`, 'DNS:localhost', `IP:${node.host}`, 'IP:127.0.0.1'])].join(',');
    const stampFile = join(dir, `${node.name}.stamp`);
    if (!stale(stampFile, `${san}|${ca}|${pw}`, keystore(node))) continue;
    const key = join(dir, `${node.name}.key`);
    const csr = join(dir, `${node.name}.csr`);
    const cert = join(dir, `${node.name}.pem`);
    const ext = join(dir, `${node.name}.ext`);
    writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`);
    run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], dir);
    run('openssl', ['req', '-new', '-key', key, '-out', csr, '-config', cnf, '-subj', `/O=instruct-pt/OU=${NODE_OU}/CN=${node.name}`], dir);
    run('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '825', '-sha256', '-extfile', ext, '-out', cert], dir);
    // The chain includes the CA so peers that trust it can build the path.
    run('openssl', ['pkcs12', '-export', '-in', cert, '-inkey', key, '-certfile', caFile, '-name', node.name, '-out', keystore(node), '-passout', `pass:${storePassword}`], dir);
    stamp(stampFile, `${san}|${ca}|${pw}`);
  }
  return { caFile, truststore, keystore };
}

function stale(stampFile: string, want: string, product: string): boolean {
  return !existsSync(product) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== want;
}

function stamp(stampFile: string, value: string): void {
  writeFileSync(stampFile, value);
}

// Self-contained, so the result does not depend on the distribution's openssl.cnf.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
O = instruct-pt
CN = instruct-pt local stack CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;
