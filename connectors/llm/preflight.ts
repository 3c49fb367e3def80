import { JobError } from '../../processors/runtime/job-error.ts';
import type { SynthesisPool } from './synthesis-pool.ts';

/**
 * Checks the LLM endpoints before a job starts: at least one must answer, and when the `tokens` length estimate
 * is to come from the server, one must offer /tokenize. Returns warnings for endpoints that do not answer (the
 * pool routes around them and retries them); throws a JobError naming the endpoints and the setting to fix.
 */
export async function checkLlmEndpoints(pool: SynthesisPool, opts: { needTokenize: boolean; setting: string }): Promise<string[]> {
  const probes = await pool.probe();
  const down = probes.filter((p) => !p.reachable);
  if (down.length === probes.length) {
    throw new JobError(`no LLM endpoint answers: ${down.map((p) => `${p.url} (${p.error})`).join(', ')}; check ${opts.setting} and that the server is running`);
  }
  const refused = probes.filter((p) => p.status === 401 || p.status === 403);
  if (refused.length > 0) throw new JobError(`LLM endpoint${refused.length > 1 ? 's' : ''} ${refused.map((p) => `${p.url} (${p.error})`).join(', ')}`);
  const count = opts.needTokenize ? await pool.countTokens('probe').catch((err: Error) => new JobError(err.message)) : 0;
  if (count instanceof JobError) throw count;
  if (count === undefined) {
    const up = probes.filter((p) => p.reachable).map((p) => p.url);
    throw new JobError(`--length-estimate tokens: the LLM server has no tokenize endpoint (${up.join(', ')}): pass --tokenizer FILE (a tokenizer.json) or use --length-estimate words`);
  }
  return down.map((p) => `LLM endpoint ${p.url} does not answer (${p.error}); continuing with the others, and retrying it`);
}
