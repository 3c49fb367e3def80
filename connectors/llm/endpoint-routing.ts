import { hashString, mix32 } from '../../processors/pretrain-text/seeded-random.ts';
import type { EndpointState, Pending } from './endpoint-state.ts';

/**
 * The endpoint a record goes to next. With an affinity key, rendezvous hashing: the key's endpoint stays the same
 * while the endpoint set does, so prompts sharing a few-shot history reach the same prefix cache. Otherwise, or when
 * that endpoint is down or refused this record's last attempt, the least loaded relative to its window (`start`
 * breaks ties, round-robin); a down endpoint or the record's last refuser only when no other is left, the refuser
 * before a down one. Without the refuser rule a record could wake as the refuser's backoff ends and be refused again,
 * until its deadline, while another endpoint answers.
 */
export function chooseEndpoint(eps: readonly EndpointState[], p: Pending, affinity: boolean, start: number, now = Date.now()): EndpointState {
  const key = p.req.affinityKey;
  if (affinity && key !== undefined) {
    let best = eps[0]!;
    let bestScore = -1;
    for (const e of eps) {
      const score = mix32(hashString(`${e.url}\u0000${key}`));
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    if (now >= best.downUntil && best !== p.refusedBy) return best;
  }
  // Down counts more than having refused this record: a refuser whose backoff has passed may be back.
  const load = (e: EndpointState) => (e.inFlight + e.queue.length) / Math.max(1, e.window) + (now < e.downUntil ? 2e6 : 0) + (e === p.refusedBy ? 1e6 : 0);
  let chosen = eps[start % eps.length]!;
  for (const e of eps) if (load(e) < load(chosen)) chosen = e;
  return chosen;
}
