import { fewShotHistory } from './multi-round.ts';
import { formatSynthesizerInput } from './synthesizer-format.ts';
import type { SynthesisRequestRecord } from '../pipeline/records.ts';

/**
 * The prompt of a synthesis request (docs/method.md §3): the few-shot history of its collection, when templating chose
 * few-shot, followed by the text's synthesizer input. A pure function of the request, so requests need not
 * carry the prompt (which would repeat the collection's texts).
 */
export function requestPrompt(r: Pick<SynthesisRequestRecord, 'text' | 'fewShot' | 'collection'>): string {
  const input = formatSynthesizerInput(r.text);
  return r.fewShot && r.collection.length > 0 ? fewShotHistory(r.collection) + input : input;
}
