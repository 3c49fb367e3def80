import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import avro from 'avsc';
import { packagePath } from './package-root.ts';

export const SCHEMAS_DIR = packagePath('schemas');

export interface LoadedSchema {
  file: string;
  text: string;
  type: avro.Type;
}

const cache = new Map<string, LoadedSchema>();

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** The named records of the .avsc files in dir, by full name ("instructpt.MetricEvent"), as parsed JSON. */
function namedRecords(dir: string): Map<string, unknown> {
  const byName = new Map<string, unknown>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.avsc'))) {
    const json = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { name?: string; namespace?: string };
    if (json.name) byName.set(json.namespace && !json.name.includes('.') ? `${json.namespace}.${json.name}` : json.name, json);
  }
  return byName;
}

/**
 * A schema that names a record of another file (a batch of metric events names MetricEvent) gets that record's
 * definition inlined at its first use, so the text registered is self-contained and the record is defined once.
 */
function inlineReferences(schema: unknown, dir: string): unknown {
  let records: Map<string, unknown> | undefined;
  const defined = new Set<string>();
  const walk = (node: unknown, namespace: string | undefined): unknown => {
    if (typeof node === 'string') {
      if (PRIMITIVES.has(node)) return node;
      const full = node.includes('.') || !namespace ? node : `${namespace}.${node}`;
      if (defined.has(full)) return node;
      const record = (records ??= namedRecords(dir)).get(full);
      if (!record) return node;
      return walk(record, namespace);
    }
    if (Array.isArray(node)) return node.map((n) => walk(n, namespace));
    if (node === null || typeof node !== 'object') return node;
    const o = node as Record<string, unknown>;
    const ns = typeof o.namespace === 'string' ? o.namespace : namespace;
    if (typeof o.name === 'string' && (o.type === 'record' || o.type === 'enum' || o.type === 'fixed')) defined.add(o.name.includes('.') || !ns ? o.name : `${ns}.${o.name}`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = k === 'type' || k === 'items' || k === 'values' || k === 'fields' ? walk(v, ns) : v;
    return out;
  };
  return walk(schema, undefined);
}

/**
 * Reads schemas/<name>.avsc (the only place a record's shape is defined) and parses it with avsc. Records named
 * from other files in the same folder are inlined (inlineReferences).
 */
export function loadSchema(name: string, dir = SCHEMAS_DIR): LoadedSchema {
  // A bare name is a file in schemas/; a path (tests, migrations) is taken as given.
  const file = name.includes('/') ? name : join(dir, name.endsWith('.avsc') ? name : `${name}.avsc`);
  const hit = cache.get(file);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`schema file not found: ${file}`);
  }
  let json: unknown;
  let type: avro.Type;
  try {
    json = inlineReferences(JSON.parse(text), dirname(file));
    type = avro.Type.forSchema(json as avro.Schema);
  } catch (err) {
    throw new Error(`schema ${file} is not valid Avro: ${(err as Error).message}`);
  }
  const loaded = { file, text: JSON.stringify(json), type };
  cache.set(file, loaded);
  return loaded;
}

/** TopicNameStrategy: the value schema of topic T lives under subject "T-value". */
export const valueSubject = (topic: string) => `${topic}-value`;
