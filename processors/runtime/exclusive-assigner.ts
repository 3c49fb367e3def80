import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/** What a member of an exclusive processor's group says of itself when it joins (its protocol metadata). */
export interface ExclusiveClaim {
  /** It holds the group's partitions now (from its last assignment). */
  holds: boolean;
  /** When it last got them (epoch ms); a later claim is the current one. */
  heldAt: number;
  /** When its process started the processor (epoch ms): the longest waiting standby goes first. */
  since: number;
}

export const EXCLUSIVE_ASSIGNER = 'IptExclusive';

/**
 * The member that gets every partition: the one holding them now, so a standby joining never moves them (and if two
 * say so — one expelled for silence and not told yet — the later holder, whose state is the newer); else the standby
 * that has waited longest, so a restarted instance does not jump the queue. Ties by member id.
 */
export function chooseActive(members: readonly { memberId: string; claim: ExclusiveClaim | undefined }[]): string | undefined {
  const byId = (a: { memberId: string }, b: { memberId: string }) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0);
  const holders = members.filter((m) => m.claim?.holds).sort((a, b) => b.claim!.heldAt - a.claim!.heldAt || byId(a, b));
  if (holders.length > 0) return holders[0]!.memberId;
  const waiting = [...members].sort((a, b) => (a.claim?.since ?? Infinity) - (b.claim?.since ?? Infinity) || byId(a, b));
  return waiting[0]?.memberId;
}

function decodeClaim(metadata: Buffer): ExclusiveClaim | undefined {
  try {
    const { userData } = AssignerProtocol.MemberMetadata.decode(metadata)!;
    const c = JSON.parse(userData.toString('utf8')) as Partial<ExclusiveClaim>;
    return typeof c.holds === 'boolean' && typeof c.heldAt === 'number' && typeof c.since === 'number' ? (c as ExclusiveClaim) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A partition assigner for a processor that must run as one active instance per group (its state for a run lives in
 * its memory: the mixer's counts). Every partition of every subscribed topic goes to one member; the others are
 * standbys that stay in the group, heartbeating, and take over at the rebalance that follows the active one's
 * leaving or its session timing out. `claim()` is asked at every join.
 */
export function exclusiveAssigner(claim: () => ExclusiveClaim): PartitionAssigner {
  return ({ cluster }) => ({
    name: EXCLUSIVE_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const active = chooseActive(members.map((m) => ({ memberId: m.memberId, claim: decodeClaim(m.memberMetadata) })));
      const all: Record<string, number[]> = {};
      for (const topic of topics) all[topic] = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId);
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: m.memberId === active ? all : {}, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return {
        name: EXCLUSIVE_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(JSON.stringify(claim())) }),
      };
    },
  });
}
