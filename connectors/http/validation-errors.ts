import type { FastifySchemaValidationError } from 'fastify';

/** One line naming the field and what is wrong with it, e.g. `body: "seed" must be integer`. */
export function describeValidationErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0];
  if (!e) return new Error(`${dataVar} is invalid`);
  const params = e.params as Record<string, unknown>;
  const path = e.instancePath.split('/').filter(Boolean).join('.');
  const field = path ? `"${path}"` : dataVar;
  let message: string;
  if (e.keyword === 'additionalProperties') message = `unknown field "${String(params.additionalProperty)}"`;
  else if (e.keyword === 'required') message = `"${String(params.missingProperty)}" is required`;
  else if (e.keyword === 'enum') message = `${field} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
  else message = `${field} ${e.message ?? 'is invalid'}`;
  return new Error(`${dataVar}: ${message}`);
}
