import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The generated file, in the method layer: types and default values only, no I/O. */
export const GENERATED_RECORD_TYPES = join('processors', 'pipeline', 'avro-records.generated.ts');

type AvroType = string | AvroType[] | { type: string; name?: string; fields?: AvroField[]; items?: AvroType; values?: AvroType; symbols?: string[] };
interface AvroField {
  name: string;
  type: AvroType;
  default?: unknown;
  doc?: string;
}
interface AvroRecord {
  type: 'record';
  name: string;
  doc?: string;
  fields: AvroField[];
}

const PRIMITIVE: Record<string, string> = { string: 'string', int: 'number', long: 'number', float: 'number', double: 'number', boolean: 'boolean', bytes: 'Buffer', null: 'null' };

/** A TypeScript type for an Avro type; a named record of another file is referred to by its name. */
function tsType(t: AvroType, indent: string): string {
  if (typeof t === 'string') return PRIMITIVE[t] ?? t.replace(/^.*\./, '');
  if (Array.isArray(t)) return t.map((u) => tsType(u, indent)).join(' | ');
  switch (t.type) {
    case 'array':
      return `${wrap(tsType(t.items!, indent))}[]`;
    case 'map':
      return `Record<string, ${tsType(t.values!, indent)}>`;
    case 'enum':
      return t.symbols!.map((s) => `'${s}'`).join(' | ');
    case 'record':
      return `{\n${fieldLines(t.fields!, `${indent}  `)}${indent}}`;
    default:
      return tsType(t.type, indent);
  }
}

const wrap = (t: string) => (t.includes(' | ') ? `(${t})` : t);

function fieldLines(fields: AvroField[], indent: string): string {
  return fields.map((f) => `${f.doc ? `${indent}/** ${f.doc} */\n` : ''}${indent}${f.name}: ${tsType(f.type, indent)};\n`).join('');
}

/** A default as a TypeScript literal (bytes defaults are not used in these schemas). */
const literal = (v: unknown) => (typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : JSON.stringify(v));

const constName = (record: string) => `${record.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_DEFAULTS`;

/**
 * The TypeScript of every record in `schemas/*.avsc`: an interface per file's record (a decoded record has every
 * field, so none is optional) and a constant of the defaults its schema declares, for writers that leave fields out.
 * Generated so that a field is added in one place, the schema; `test/unit/record-types.test.ts` fails when this file
 * is out of date (`npm run -s gen:records` writes it).
 */
export function recordTypesSource(schemasDir: string): string {
  const files = readdirSync(schemasDir).filter((f) => f.endsWith('.avsc')).sort();
  let out = `// Generated from schemas/*.avsc by ops/schemas/record-types-codegen.ts (npm run -s gen:records): do not edit.\n// The records' TypeScript shapes and their schemas' defaults; processors/pipeline/records.ts narrows and names them.\n`;
  for (const f of files) {
    const r = JSON.parse(readFileSync(join(schemasDir, f), 'utf8')) as AvroRecord;
    out += `\n/** schemas/${basename(f)}${r.doc ? `: ${r.doc}` : ''} */\nexport interface ${r.name} {\n${fieldLines(r.fields, '  ')}}\n`;
    const defaults = r.fields.filter((x) => 'default' in x);
    if (defaults.length > 0) {
      const keys = defaults.map((x) => `'${x.name}'`).join(' | ');
      out += `\n/** The defaults schemas/${basename(f)} declares. */\nexport const ${constName(r.name)}: Pick<${r.name}, ${keys}> = {\n${defaults.map((x) => `  ${x.name}: ${literal(x.default)},\n`).join('')}};\n`;
    }
  }
  return out;
}
