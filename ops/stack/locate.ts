import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { isCluster, nativeEndpoints, stackConfig, type StackEndpoints } from './stack-config.ts';
import { clientEnvPath, clusterClientEnv } from './cluster-env.ts';
import { stackUp } from './stack.ts';
import { isSet, setting } from '../../processors/runtime/settings.ts';
import { clickhouseHealthy, kafkaHealthy, registryHealthy } from './health.ts';

/**
 * The one answer to "where is the stack": explicit endpoints from the environment win; otherwise, when a Docker
 * engine is reachable, a stack already answering on the default ports (`docker compose up`) or else the official
 * images through testcontainers; otherwise the native stack is brought up (idempotently) under .stack/.
 */
export async function locateStack(env: NodeJS.ProcessEnv = process.env, log: (l: string) => void = () => undefined): Promise<StackEndpoints> {
  if (isSet('IPT_KAFKA_BROKERS', env) && isSet('IPT_REGISTRY_URL', env) && isSet('IPT_CLICKHOUSE_URL', env)) {
    return { brokers: setting('IPT_KAFKA_BROKERS', env), registryUrl: setting('IPT_REGISTRY_URL', env), clickhouseUrl: setting('IPT_CLICKHOUSE_URL', env), source: 'env' };
  }
  if (setting('IPT_STACK', env) !== 'native' && (await dockerEngineReachable(env))) {
    // `docker compose up` (docker-compose.yml) publishes the stack on the default ports: use it rather than start another.
    const running = await answeringOnDefaultPorts();
    if (running) {
      log('a stack answers on the default ports (docker compose?): using it');
      return running;
    }
    // testcontainers is a development dependency: an installed package without it says how to go on.
    const containers = await import('./containers.ts').catch((err: Error & { code?: string }) => {
      if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
      throw new Error('a Docker engine answers, but the testcontainers package is not installed (a development dependency): install it, run the stack with `docker compose up`, or set IPT_STACK=native to use the native stack');
    });
    return containers.startContainers(log);
  }
  const cfg = stackConfig(env);
  await stackUp(cfg, log);
  const ep = nativeEndpoints(cfg);
  // A secured cluster of the stack's own: its clients use the admin's settings unless the environment has its own.
  if (isCluster(cfg) && cfg.secure && !isSet('IPT_KAFKA_SECURITY_PROTOCOL', env) && existsSync(clientEnvPath(cfg, 'admin'))) {
    const { IPT_KAFKA_BROKERS: _brokers, ...security } = clusterClientEnv(cfg, 'admin');
    ep.kafkaSecurityEnv = security;
  }
  return ep;
}

/** The stack's three services on their default ports (those docker-compose.yml publishes), when all three answer. */
export async function answeringOnDefaultPorts(host = '127.0.0.1'): Promise<StackEndpoints | undefined> {
  const ep: StackEndpoints = { brokers: [`${host}:9092`], registryUrl: `http://${host}:8081`, clickhouseUrl: `http://${host}:8123`, source: 'running' };
  const up = await Promise.all([kafkaHealthy(ep.brokers), registryHealthy(ep.registryUrl), clickhouseHealthy(ep.clickhouseUrl)]);
  return up.every(Boolean) ? ep : undefined;
}

/** An engine answers `GET /_ping` on its socket (or DOCKER_HOST); a leftover socket file with nothing behind it does not. */
async function dockerEngineReachable(env: NodeJS.ProcessEnv): Promise<boolean> {
  if (env.DOCKER_HOST) return true;
  const socketPath = '/var/run/docker.sock';
  if (!existsSync(socketPath)) return false;
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Environment variables that hand the located endpoints to child processes (CLI runs, processors). */
export function endpointsEnv(ep: StackEndpoints): Record<string, string> {
  return { IPT_KAFKA_BROKERS: ep.brokers.join(','), IPT_REGISTRY_URL: ep.registryUrl, IPT_CLICKHOUSE_URL: ep.clickhouseUrl, ...ep.kafkaSecurityEnv };
}
