import { describe, expect, it } from 'vitest';
import { checkSettings, flagOrSetting, setting, SETTINGS, SETTING_NAMES } from '../../processors/runtime/settings.ts';
import { ConfigError } from '../../processors/runtime/config-error.ts';

describe('the settings: one definition of every environment variable', () => {
  it('gives the default when a variable is unset or empty, and the parsed value when set', () => {
    expect(setting('IPT_BATCH_SIZE', {})).toBe(500);
    expect(setting('IPT_BATCH_SIZE', { IPT_BATCH_SIZE: '' })).toBe(500);
    expect(setting('IPT_BATCH_SIZE', { IPT_BATCH_SIZE: '64' })).toBe(64);
    expect(setting('IPT_EXACTLY_ONCE', { IPT_EXACTLY_ONCE: 'Yes' })).toBe(true);
    expect(setting('IPT_EXACTLY_ONCE', { IPT_EXACTLY_ONCE: 'off' })).toBe(false);
    expect(setting('IPT_KAFKA_BROKERS', { IPT_KAFKA_BROKERS: 'a:1, b:2,' })).toEqual(['a:1', 'b:2']);
    expect(setting('IPT_KAFKA_SECURITY_PROTOCOL', { IPT_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })).toBe('sasl_ssl');
    expect(setting('IPT_LLM_URL', { IPT_LLM_URL: 'http://a:1/v1,http://b:2/v1' })).toEqual(['http://a:1/v1', 'http://b:2/v1']);
    expect(setting('IPT_STACK_SERVICES', { IPT_STACK_SERVICES: 'clickhouse,kafka' })).toEqual(['kafka', 'clickhouse']);
    expect(setting('IPT_STACK_SERVICES', {})).toEqual(['kafka', 'registry', 'clickhouse']);
    expect(setting('IPT_INSTANCE_ID', {})).toBeUndefined();
  });

  it('refuses a bad value at once, naming the variable and what it expects (a secret’s value is not repeated)', () => {
    const bad: [string, string, RegExp][] = [
      ['IPT_BATCH_SIZE', '0', /^IPT_BATCH_SIZE=0: expected a whole number from 1$/],
      ['IPT_BATCH_SIZE', '4k', /^IPT_BATCH_SIZE=4k: /],
      ['IPT_SESSION_TIMEOUT_MS', '1000', /from 6000/],
      ['IPT_EXACTLY_ONCE', 'maybe', /^IPT_EXACTLY_ONCE=maybe: expected true or false$/],
      ['IPT_KAFKA_BROKERS', 'localhost', /"localhost" is not host:port/],
      ['IPT_REGISTRY_URL', 'not a url', /not a URL/],
      ['IPT_CLICKHOUSE_DB', 'my-db', /^IPT_CLICKHOUSE_DB=my-db: expected letters, digits and _/],
      ['IPT_TOPOLOGY', 'mesh', /^IPT_TOPOLOGY=mesh: expected staged or fused$/],
      ['IPT_STACK_SERVICES', 'kafka,redis', /expected a comma-separated list of kafka, registry, clickhouse/],
      ['IPT_STACK_BROKERS', '9', /from 1 to 5/],
      ['IPT_METRICS_PORT', '70000', /to 65535/],
    ];
    for (const [name, value, message] of bad) {
      expect(() => setting(name as never, { [name]: value }), name).toThrow(ConfigError);
      expect(() => setting(name as never, { [name]: value }), name).toThrow(message);
    }
    expect(() => setting('IPT_API_TOKEN', { IPT_API_TOKEN: 'short-secret' })).toThrow(/^IPT_API_TOKEN: expected at least 16 characters$/);
    expect(() => checkSettings(['IPT_LOG_LEVEL', 'IPT_FUSED_MAX_HELD'], { IPT_LOG_LEVEL: 'info', IPT_FUSED_MAX_HELD: '0' })).toThrow(/^IPT_FUSED_MAX_HELD=0/);
    expect(() => checkSettings(SETTING_NAMES, {})).not.toThrow();
  });

  it('parses a flag that stands for a setting with the same schema, naming the flag', () => {
    expect(flagOrSetting('IPT_TOPIC_PREFIX', undefined, 'prefix', { IPT_TOPIC_PREFIX: 'lab' })).toBe('lab');
    expect(flagOrSetting('IPT_TOPIC_PREFIX', 'exp1', 'prefix', { IPT_TOPIC_PREFIX: 'lab' })).toBe('exp1');
    expect(() => flagOrSetting('IPT_TOPIC_PREFIX', 'a b', 'prefix', {})).toThrow(/^--prefix a b: expected letters, digits/);
    expect(() => flagOrSetting('IPT_TOPOLOGY', 'mesh', 'topology', {})).toThrow(/^--topology mesh: expected staged or fused$/);
  });

  it('gives every variable a meaning and a default as the docs show it', () => {
    for (const name of SETTING_NAMES) {
      const d = SETTINGS[name];
      expect(d.meaning.length, name).toBeGreaterThan(10);
      expect(d.shown, name).not.toBe('');
    }
  });
});
