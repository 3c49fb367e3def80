// `npm run -s gen:records`: writes the records' TypeScript from schemas/*.avsc.
import { writeFileSync } from 'node:fs';
import { SCHEMAS_DIR } from '../../processors/runtime/schemas.ts';
import { GENERATED_RECORD_TYPES, recordTypesSource } from './record-types-codegen.ts';

writeFileSync(GENERATED_RECORD_TYPES, recordTypesSource(SCHEMAS_DIR));
process.stdout.write(`wrote ${GENERATED_RECORD_TYPES}\n`);
