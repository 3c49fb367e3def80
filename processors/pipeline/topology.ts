import type { PipelineTopics, StageName, Topology } from './pipeline-topics.ts';

/**
 * The pipeline as data: its topics, its stages, what each stage reads, writes and looks up, and which cut of the
 * graph (staged or fused) runs it. Topic specs, dead-letter topics, the topologies' stage lists, replay's readers,
 * the lag sampler's topics and `ipt pipeline describe` are all derived from here (docs/architecture.md, "The
 * topology"); a unit test checks every stage's processor against its node.
 */

export type TopicKey = Exclude<keyof PipelineTopics, 'prefix'>;

export interface TopicNode {
  /** `pipeline`: the pipeline's partition count (`--partitions`); 1 where one order must hold for the whole topic. */
  partitions: 'pipeline' | 1;
  /** keep: every record, forever (replay re-runs rounds from them); compact: the latest value per key. */
  retention: 'keep' | 'compact';
  what: string;
  /** Written from outside the stages (ingest: `pipeline run`, HTTP, `rounds start`). */
  ingest?: boolean;
}

export const TOPICS: Record<TopicKey, TopicNode> = {
  runs: { partitions: 1, retention: 'compact', what: 'run configurations, by run id', ingest: true },
  raw: { partitions: 'pipeline', retention: 'keep', what: 'raw texts, keyed <run>/<id>', ingest: true },
  requests: { partitions: 'pipeline', retention: 'keep', what: 'synthesis prompts, one per text and round' },
  results: { partitions: 'pipeline', retention: 'keep', what: 'the synthesizer’s answers (or a failure)' },
  pool: { partitions: 'pipeline', retention: 'keep', what: 'round collections handed to the next round' },
  augmented: { partitions: 'pipeline', retention: 'keep', what: 'instruction-augmented texts (or kept raw)' },
  general: { partitions: 1, retention: 'keep', what: 'general instructions, in the order they are mixed in', ingest: true },
  mixed: { partitions: 1, retention: 'keep', what: 'the training stream: one partition, so its order is one order' },
  mixerState: { partitions: 1, retention: 'compact', what: 'the mixer’s per-run counts (its changelog)' },
  metrics: { partitions: 'pipeline', retention: 'keep', what: 'metric events, batched per run and chunk' },
  evalRecords: { partitions: 'pipeline', retention: 'keep', what: 'evaluation tasks', ingest: true },
};

export interface StageNode {
  name: StageName;
  what: string;
  /** The input topic, consumed in the stage's group `<prefix>.<stage>`. */
  reads: TopicKey;
  writes: TopicKey[];
  /** Topics it looks records up in (read in full or read back by key), not consumed. */
  tables: TopicKey[];
  /** The cuts of the graph that run it. */
  cuts: Topology[];
  /** One active instance per prefix, others standbys: it keeps per-run counts in memory. */
  exclusive?: boolean;
  /** It calls the LLM: it keeps as many records in flight as the LLM pool may send at once. */
  callsLlm?: boolean;
  /** It runs only where this is configured: the cuts' stage lists leave it out, and the pipeline adds it when it is. */
  configured?: string;
  /** The stages it runs in one processor, chained in memory (the fused stage). */
  fuses?: StageName[];
  /**
   * A table each input record is paired with (templating-pool: a round's collection with the next round's text).
   * Where the fused stage also reads that table's topic as its input, the pair meets in memory (a join edge).
   */
  joins?: TopicKey;
}

export const STAGE_GRAPH: readonly StageNode[] = [
  { name: 'templating', what: 'round-0 prompts from raw texts', reads: 'raw', writes: ['requests', 'augmented', 'results'], tables: ['runs'], cuts: ['staged'] },
  { name: 'templating-pool', what: 'next-round prompts from a round’s collections', reads: 'pool', writes: ['requests', 'augmented'], tables: ['runs', 'raw'], joins: 'raw', cuts: ['staged'] },
  { name: 'synthesis', what: 'prompts to the LLM, answers back', reads: 'requests', writes: ['results'], tables: ['runs'], cuts: ['staged'], callsLlm: true },
  { name: 'round-feedback', what: 'parses pairs, builds collections and augmented texts', reads: 'results', writes: ['pool', 'augmented', 'metrics'], tables: ['runs'], cuts: ['staged'] },
  {
    name: 'fused',
    what: 'templating, synthesis, round feedback and mixing in memory',
    reads: 'raw',
    writes: ['pool', 'augmented', 'metrics', 'mixed', 'mixerState'],
    tables: ['runs', 'raw', 'pool', 'general', 'mixerState'],
    cuts: ['fused'],
    exclusive: true,
    callsLlm: true,
    fuses: ['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing'],
  },
  { name: 'mixing', what: 'domain and general texts by token weight', reads: 'augmented', writes: ['mixed', 'mixerState'], tables: ['runs', 'general', 'mixerState'], cuts: ['staged'], exclusive: true },
  { name: 'evaluation', what: 'F1 of the synthesizer on evaluation tasks', reads: 'evalRecords', writes: ['metrics'], tables: ['runs'], cuts: ['staged', 'fused'], callsLlm: true },
  {
    name: 'judge',
    what: 'the LLM judge on a sample of the synthesized pairs',
    reads: 'metrics',
    writes: ['metrics'],
    tables: ['raw'],
    cuts: ['staged', 'fused'],
    exclusive: true,
    callsLlm: true,
    configured: 'a judge URL (--judge-url, IPT_JUDGE_URL)',
  },
  { name: 'clickhouse-sink', what: 'metric events to ClickHouse', reads: 'metrics', writes: [], tables: [], cuts: ['staged', 'fused'] },
];

export function stageNode(name: StageName): StageNode {
  const s = STAGE_GRAPH.find((n) => n.name === name);
  if (!s) throw new Error(`no stage "${name}" in the topology`);
  return s;
}

/**
 * The stages a cut runs, in the graph's order (upstream first): those that always run, and with `configured` also
 * those that run only where configured (the judge), as the cut's description shows them.
 */
export const cutStages = (cut: Topology, configured = false): StageName[] => STAGE_GRAPH.filter((s) => s.cuts.includes(cut) && (configured || !s.configured)).map((s) => s.name);

/** The stages that consume a topic (replay moves their groups), over both cuts. */
export const readersOf = (topic: TopicKey): StageName[] => STAGE_GRAPH.filter((s) => s.reads === topic).map((s) => s.name);

/** Every topic some stage consumes (the lag sampler's), in the graph's order. */
export const consumedTopics = (): TopicKey[] => [...new Set(STAGE_GRAPH.map((s) => s.reads))];

/** An edge inside a fused stage: one member's output handed to another in memory (and also written, or not). */
export interface MemoryEdge {
  fused: StageName;
  from: StageName;
  to: StageName;
  topic: TopicKey;
  /** The fused stage writes the topic all the same (a changelog to read back, or for other readers). */
  written: boolean;
  /**
   * The reader pairs each record with the fused stage's own input (StageNode.joins): the record waits in memory for
   * the input it pairs with, rather than being handed on at once.
   */
  join: boolean;
}

export function memoryEdges(cut: Topology): MemoryEdge[] {
  const out: MemoryEdge[] = [];
  for (const s of STAGE_GRAPH.filter((n) => n.cuts.includes(cut) && n.fuses)) {
    const members = s.fuses!.map(stageNode);
    for (const w of members) for (const topic of w.writes) for (const r of members.filter((m) => m.reads === topic)) out.push({ fused: s.name, from: w.name, to: r.name, topic, written: s.writes.includes(topic), join: r.joins === s.reads });
  }
  return out;
}

/** The topics a cut never writes: the edge runs in memory there, and the fused stage does not write the topic. */
export const inMemoryTopics = (cut: Topology): TopicKey[] => [...new Set(memoryEdges(cut).filter((e) => !e.written).map((e) => e.topic))];
