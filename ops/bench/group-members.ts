import { setTimeout as sleep } from 'node:timers/promises';
import { AssignerProtocol, type Admin } from 'kafkajs';

export interface GroupMember {
  memberId: string;
  clientId: string;
  /** Partitions assigned to it, over all the group's topics. */
  partitions: number;
  /** Which: partition numbers by topic. */
  assignment: Record<string, number[]>;
}

export interface GroupState {
  state: string;
  members: GroupMember[];
}

/** A consumer group's state and who holds how many partitions (the assignments the group's leader handed out). */
export async function describeGroup(admin: Admin, groupId: string): Promise<GroupState> {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (!g) return { state: 'Unknown', members: [] };
  return {
    state: g.state,
    members: g.members.map((m) => {
      const a = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
      const assignment = a?.assignment ?? {};
      const partitions = Object.values(assignment).reduce((n, ps) => n + ps.length, 0);
      return { memberId: m.memberId, clientId: m.clientId, partitions, assignment };
    }),
  };
}

/** Waits until the group is stable and its members satisfy `settled` (a member joining mid-way starts another round). */
export async function waitForGroup(admin: Admin, groupId: string, settled: (members: GroupMember[]) => boolean, timeoutMs = 60_000): Promise<GroupState> {
  const deadline = Date.now() + timeoutMs;
  let last: GroupState = { state: 'Unknown', members: [] };
  while (Date.now() < deadline) {
    last = await describeGroup(admin, groupId);
    if (last.state === 'Stable' && settled(last.members)) return last;
    await sleep(200);
  }
  throw new Error(`group ${groupId} did not settle within ${timeoutMs / 1000} s: ${last.state}, ${JSON.stringify(last.members)}`);
}
