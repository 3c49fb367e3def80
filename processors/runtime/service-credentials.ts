import { ConfigError } from './config-error.ts';
import { setting } from './settings.ts';

export interface BasicCredentials {
  username: string;
  password: string;
}

/** A user/password pair from two variables: both or neither, so a half-set pair is found at start-up, not at the first 401. */
function pair(env: NodeJS.ProcessEnv, user: 'IPT_REGISTRY_USERNAME' | 'IPT_CLICKHOUSE_USERNAME', pass: 'IPT_REGISTRY_PASSWORD' | 'IPT_CLICKHOUSE_PASSWORD'): BasicCredentials | undefined {
  const username = setting(user, env);
  const password = setting(pass, env);
  if ((username === undefined) !== (password === undefined)) throw new ConfigError(`${user} and ${pass} go together: set both or neither`);
  return username === undefined ? undefined : { username, password: password! };
}

/** Basic auth for the schema registry, as Confluent's registry and Confluent Cloud use it. */
export const registryCredentials = (env: NodeJS.ProcessEnv = process.env) => pair(env, 'IPT_REGISTRY_USERNAME', 'IPT_REGISTRY_PASSWORD');

/** ClickHouse's user and password (the server's `default` user without a password when unset). */
export const clickhouseCredentials = (env: NodeJS.ProcessEnv = process.env) => pair(env, 'IPT_CLICKHOUSE_USERNAME', 'IPT_CLICKHOUSE_PASSWORD');

export function basicAuthHeader(c: BasicCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
