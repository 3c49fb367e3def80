/** What the heartbeats of a batch in progress learned: a rebalance began, or the group dropped this member. */
export interface Membership {
  rebalancing: boolean;
  dropped: boolean;
}

/**
 * Reads a failed heartbeat into the batch's membership; false when the error says neither (a connection error: the
 * next heartbeat asks again). A member the group dropped (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: silent past its
 * session, or cut off the network) no longer owns its partitions, and another member may be doing this work already;
 * a rebalance (REBALANCE_IN_PROGRESS, or the coordinator moved) ends the batch at its next chunk boundary.
 */
export function learnFromHeartbeat(m: Membership, err: Error & { type?: string }): boolean {
  if (err.type === 'UNKNOWN_MEMBER_ID' || err.type === 'ILLEGAL_GENERATION') {
    m.rebalancing = m.dropped = true;
    return true;
  }
  if (err.type === 'REBALANCE_IN_PROGRESS' || err.type === 'NOT_COORDINATOR_FOR_GROUP') {
    m.rebalancing = true;
    return true;
  }
  return false;
}
