import { encodingProblem, idProblem, textProblem } from './text-checks.ts';
import { placement, type Placement, type RunConfig } from '../pipeline/run-config.ts';
import type { RawTextRecord, SynthesisResultRecord } from '../pipeline/records.ts';
import { SYNTHESIS_RESULT_DEFAULTS } from '../pipeline/avro-records.generated.ts';

/**
 * Why a record read from the raw-text topic is refused, or undefined when it passes: the rule every ingest path
 * applies (text-checks.ts), for records another producer wrote to the topic directly. The id, the
 * text and the source are checked as HTTP ingest checks them. The byte bound is left out: the topic's
 * max.message.bytes bounds a record there, and the ingest bound belongs to the entry point (`ipt serve
 * --max-text-bytes` may differ from IPT_MAX_TEXT_BYTES), so a stage cannot know the one a text was accepted under.
 */
export function rawTextProblem(raw: Pick<RawTextRecord, 'id' | 'text' | 'source'>): string | undefined {
  const problem = idProblem(raw.id) ?? textProblem(raw.text, Infinity) ?? encodingProblem('source', raw.source);
  // JSON.stringify escapes what made the id unusable (controls, NUL), so the reason itself is clean.
  return problem === undefined ? undefined : `raw text ${JSON.stringify(raw.id.slice(0, 256))} refused by the text rule: ${problem}`;
}

/** The place of a refused text in its run's rounds: a converted text with a sequence number has one; a text kept raw has none. */
export function refusedPlace(run: Pick<RunConfig, 'roundSize' | 'rounds'>, raw: Pick<RawTextRecord, 'convert' | 'seq'>): Placement | undefined {
  return raw.convert && raw.seq >= 0 ? placement(run, raw.seq) : undefined;
}

/**
 * The `failed` result that stands in for a refused text at its place, as for a text whose synthesis failed: round
 * feedback leaves the text out, hands an empty collection on to the next round's text at that position (before the
 * last round) and writes the text's metric event, which its dead letter (outputs emitted) announces. So the next
 * round's text is not left waiting, and nothing of the refused text goes on: its text and collection are empty.
 */
export function refusedResult(raw: Pick<RawTextRecord, 'id' | 'runId'>, p: Placement, reason: string, now = Date.now()): SynthesisResultRecord {
  return { ...SYNTHESIS_RESULT_DEFAULTS, id: raw.id, runId: raw.runId, round: p.round, position: p.position, text: '', fewShot: false, collection: [], collectionId: raw.id, outcome: 'failed', reason, finishedAt: now };
}
