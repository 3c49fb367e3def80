import { describe, expect, it } from 'vitest';
import { learnFromHeartbeat, type Membership } from '../../processors/runtime/group-membership.ts';

const failed = (type?: string) => Object.assign(new Error(type ?? 'Connection error'), { type });

describe('learnFromHeartbeat', () => {
  it('a member the group dropped is fenced and ends its batch; a rebalance only ends the batch', () => {
    for (const type of ['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION']) {
      const m: Membership = { rebalancing: false, dropped: false };
      expect(learnFromHeartbeat(m, failed(type))).toBe(true);
      expect(m).toEqual({ rebalancing: true, dropped: true });
    }
    for (const type of ['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP']) {
      const m: Membership = { rebalancing: false, dropped: false };
      expect(learnFromHeartbeat(m, failed(type))).toBe(true);
      expect(m).toEqual({ rebalancing: true, dropped: false });
    }
  });

  it('a connection error says nothing of the membership: the next heartbeat asks again', () => {
    const m: Membership = { rebalancing: false, dropped: false };
    expect(learnFromHeartbeat(m, failed())).toBe(false);
    expect(learnFromHeartbeat(m, failed('REQUEST_TIMED_OUT'))).toBe(false);
    expect(m).toEqual({ rebalancing: false, dropped: false });
    // Once dropped, a later rebalance does not undo it.
    learnFromHeartbeat(m, failed('ILLEGAL_GENERATION'));
    learnFromHeartbeat(m, failed('REBALANCE_IN_PROGRESS'));
    expect(m.dropped).toBe(true);
  });
});
