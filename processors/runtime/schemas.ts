import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';

export const SCHEMAS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

export interface LoadedSchema {
  file: string;
  text: string;
  type: avro.Type;
}

const cache = new Map<string, LoadedSchema>();

/** Reads schemas/<name>.avsc (the only place a record's shape is defined) and parses it with avsc. */
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
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(JSON.parse(text));
  } catch (err) {
    throw new Error(`schema ${file} is not valid Avro: ${(err as Error).message}`);
  }
  const loaded = { file, text: JSON.stringify(JSON.parse(text)), type };
  cache.set(file, loaded);
  return loaded;
}

/** TopicNameStrategy: the value schema of topic T lives under subject "T-value". */
export const valueSubject = (topic: string) => `${topic}-value`;
