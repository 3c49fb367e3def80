import { defineProcessor, stageOf, type Emit, type HandlerResult, type InputRecord, type OutputSpec, type ProcessorSpec, type Stage } from '../runtime/processor.ts';
import { errorText } from '../runtime/dead-letter.ts';
import { whenReady } from '../runtime/concurrency.ts';
import { stageGroup, type PipelineTopics, type StageName } from './pipeline-topics.ts';
import { memoryEdges, stageNode, type TopicKey } from './topology.ts';

type Result = HandlerResult<string>;
type Maybe<T> = T | Promise<T>;
// Members are stages of different record types; the composition passes each its own outputs' values.
type Member = Stage<never, string>;

/**
 * The in-memory side of a join edge (topology.ts, StageNode.joins): records the joining member reads wait for the
 * fused stage's input record they pair with. The port does the pairing with the joining member's own function.
 */
export interface JoinPort<In> {
  /** The joining member. */
  member: StageName;
  /** Its outputs: what a pairing emits is routed like any member's emits. */
  outputs: Record<string, OutputSpec>;
  /** Called when an input record's chain starts, before its first await. */
  begin(input: In): JoinTicket;
  init?(): Promise<void>;
  close?(): Promise<void>;
}

/** One input record's part in the join. */
export interface JoinTicket {
  /** What pairing this input gives, as the joining member's result (undefined: it pairs with nothing). */
  paired(): Maybe<Result | undefined>;
  /**
   * What the join settles once the chain reaches the member that writes the join's topic, before that member's emits
   * are routed (collections carried in from before that no input takes are closed there), as the joining member's
   * result.
   */
  beforeGive?(): Maybe<Result | undefined>;
  /** A record this chain emits on the join's topic: the record to write, and what is paired at once (none: it waits). */
  give(e: Emit): Maybe<{ write: Emit; paired?: Maybe<Result> }>;
  /** The chain ended, done or failed: whatever it did not give is given to nobody. */
  end(): void;
}

interface Route {
  /** A member that reads this output in memory. */
  to?: StageName;
  join: boolean;
  /** The fused stage writes this output too (or instead, when its reader skips the record). */
  written: boolean;
}

/** What one input record's chain has produced so far, and the member it is in (a failure names it). */
interface Chain {
  rec: InputRecord<unknown>;
  ticket: JoinTicket | undefined;
  out: Emit[];
  deadLetter?: string;
  skip?: string;
  step: string;
}

/**
 * A fused stage (topology.ts, StageNode.fuses) composed by the graph from its members' own stages: one processor over
 * the fused node's input that calls the entry member (the one reading that input) and routes every emit along the
 * graph's in-memory edges to the member that reads it, depth first, in emit order (so texts reach a stateful member
 * such as the mixer in the order the staged topology's topics would carry them per record). An emit on a topic the
 * fused stage writes and no member reads is written; one a member reads but skips is written when the fused stage
 * writes its topic (nothing goes unaccounted), else the skip is counted. A join edge goes through the join port.
 * Dead letters of any member dead-letter the input (outputs kept), a failure names the member it happened in, and
 * each step's value is awaited only when it is a promise, so a chain whose members answer synchronously stays so.
 */
export function composeFused<In>(topics: PipelineTopics, name: StageName, members: Partial<Record<StageName, Member>>, join?: JoinPort<In>): Stage<In, string> {
  const node = stageNode(name);
  if (!node.fuses) throw new Error(`stage ${name} fuses no members`);
  const edges = memoryEdges(node.cuts[0]!).filter((e) => e.fused === name);
  const keyOf = new Map<string, TopicKey>(Object.entries(topics).filter(([k]) => k !== 'prefix').map(([k, v]) => [v as string, k as TopicKey]));
  for (const e of edges.filter((x) => x.join)) if (e.to !== join?.member) throw new Error(`the ${name} stage joins ${e.topic} in ${e.to}, but no join port serves it`);
  const stageMembers = node.fuses.filter((m) => m !== join?.member).map((m) => {
    const s = members[m];
    if (!s) throw new Error(`the ${name} stage needs its member ${m}`);
    return [m, s] as const;
  });
  // The member whose emits on the join's topic go through the join port.
  const joinFrom = edges.find((e) => e.join)?.from;
  const outputsOf = (m: StageName): Record<string, OutputSpec> => (m === join?.member ? join.outputs : members[m]!.spec.outputs);

  // Per member, per output name: where its emits go.
  const routes = new Map<StageName, Map<string, Route>>();
  const outputs: Record<string, OutputSpec> = {};
  for (const m of node.fuses) {
    const r = new Map<string, Route>();
    for (const [out, spec] of Object.entries(outputsOf(m))) {
      const key = keyOf.get(spec.topic);
      const edge = key && edges.find((e) => e.from === m && e.topic === key);
      const written = key !== undefined && node.writes.includes(key);
      if (!edge && !written) throw new Error(`member ${m} of ${name} writes ${spec.topic}, which ${name} neither hands on nor writes`);
      r.set(out, { to: edge ? edge.to : undefined, join: edge ? edge.join : false, written });
      if (!written) continue;
      if (outputs[out] && outputs[out].topic !== spec.topic) throw new Error(`members of ${name} name two outputs "${out}"`);
      outputs[out] = spec;
    }
    routes.set(m, r);
  }
  const entry = node.fuses.find((m) => stageNode(m).reads === node.reads);
  if (!entry || !members[entry]) throw new Error(`no member of ${name} reads its input ${node.reads}`);
  const handlerOf = new Map<StageName, ProcessorSpec<unknown, string>['handle']>(stageMembers.map(([m, s]) => [m, (s.spec as unknown as ProcessorSpec<unknown, string>).handle]));

  /** A member's result into the chain: a skip noted, a dead letter kept, its emits routed in order. */
  const absorb = (from: StageName, result: Maybe<Result | undefined>, c: Chain): Maybe<void> => {
    if (result instanceof Promise) return result.then((r) => absorb(from, r, c));
    if (result === undefined) return;
    if (!Array.isArray(result)) {
      if ('skip' in result) {
        c.skip ??= result.skip;
        return;
      }
      c.deadLetter ??= result.deadLetter;
    }
    const emits = Array.isArray(result) ? result : result.emits;
    const before = from === joinFrom ? c.ticket?.beforeGive?.() : undefined;
    if (before === undefined) return route(from, emits, 0, c);
    return whenReady(absorb(join!.member, before, c), () => route(from, emits, 0, c));
  };

  const route = (from: StageName, emits: Emit[], start: number, c: Chain): Maybe<void> => {
    const r = routes.get(from)!;
    for (let i = start; i < emits.length; i++) {
      const e = emits[i]!;
      const to = r.get(e.to);
      if (!to) throw new Error(`member ${from} emitted to an output it does not declare: ${e.to}`);
      let next: Maybe<void>;
      if (to.join) {
        c.step = `${join!.member} (hand-over)`;
        next = whenReady(c.ticket!.give(e), (g) => {
          c.out.push(g.write);
          return absorb(join!.member, g.paired, c);
        });
      } else if (to.to) {
        c.step = to.to;
        const handled = handlerOf.get(to.to)!({ key: e.key, value: e.value, headers: c.rec.headers, timestamp: c.rec.timestamp, source: c.rec.source });
        const reader = to.to;
        next = whenReady(handled, (h) => {
          if (to.written && !Array.isArray(h) && 'skip' in h) c.out.push(e);
          else return absorb(reader, h, c);
        });
      } else {
        c.out.push(e);
        continue;
      }
      if (next instanceof Promise) return next.then(() => route(from, emits, i + 1, c));
    }
  };

  const finish = (c: Chain): Result => {
    if (c.deadLetter !== undefined) return { emits: c.out, deadLetter: c.deadLetter };
    if (c.out.length === 0 && c.skip !== undefined) return { skip: c.skip };
    return c.out;
  };
  const named = (c: Chain, err: unknown) => new Error(`${c.step}: ${errorText(err)}`);

  const memberSpecs = stageMembers.map(([, s]) => s.spec);
  const checkpoints = memberSpecs.flatMap((s) => (s.checkpoint ? [s.checkpoint] : []));
  const pressures = memberSpecs.flatMap((s) => (s.backpressure ? [s.backpressure] : []));
  const spec = defineProcessor<In, string>({
    name: stageGroup(topics, name),
    input: { topics: [topics[node.reads]], schema: members[entry]!.spec.input.schema },
    outputs,
    checkpoint: checkpoints.length === 0 ? undefined : { committed: () => checkpoints.forEach((k) => k.committed()), abandoned: () => checkpoints.forEach((k) => k.abandoned()) },
    backpressure:
      pressures.length === 0
        ? undefined
        : { saturated: () => pressures.some((p) => p.saturated()), whenReady: async () => void (await Promise.all(pressures.filter((p) => p.saturated()).map((p) => p.whenReady()))) },
    handle: (rec) => {
      const c: Chain = { rec, ticket: undefined, out: [], step: `${join?.member ?? entry} (hand-over)` };
      let done: Maybe<void>;
      try {
        c.ticket = join?.begin(rec.value);
        // What the input's pairing gives comes first: in the staged topology it is what templating-pool emits.
        done = whenReady(c.ticket?.paired(), (p) =>
          whenReady(absorb(join?.member ?? entry, p, c), () => {
            c.step = entry;
            return absorb(entry, handlerOf.get(entry)!(rec), c);
          }),
        );
      } catch (err) {
        c.ticket?.end();
        throw named(c, err);
      }
      if (!(done instanceof Promise)) {
        c.ticket?.end();
        return finish(c);
      }
      return done.then(
        () => {
          c.ticket?.end();
          return finish(c);
        },
        (err: unknown) => {
          c.ticket?.end();
          throw named(c, err);
        },
      );
    },
  });
  return stageOf(spec, {
    init: async () => {
      for (const [, s] of stageMembers) await s.init();
      await join?.init?.();
    },
    close: async () => {
      await Promise.all([...stageMembers.map(([, s]) => s.close()), join?.close?.()]);
    },
  });
}
