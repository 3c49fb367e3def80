import { pipelineTopics, stageGroup, type Topology } from './pipeline-topics.ts';
import { cutStages, inMemoryTopics, memoryEdges, stageNode, TOPICS, type TopicKey } from './topology.ts';

/** `ipt pipeline describe`: a cut of the topology as text, for a terminal. */
export function describeTopology(cut: Topology, prefix = 'ipt', partitions = 4): string {
  const t = pipelineTopics(prefix);
  const stages = cutStages(cut, true).map(stageNode);
  const memory = new Set(inMemoryTopics(cut));
  const used = new Set<TopicKey>(stages.flatMap((s) => [s.reads, ...s.writes, ...s.tables]));
  const width = Math.max(...Object.values(t).map((n) => n.length));
  const lines = [`topology: ${cut} (prefix ${prefix}, ${partitions} partitions)`, '', 'topics:'];
  for (const [key, node] of Object.entries(TOPICS) as [TopicKey, (typeof TOPICS)[TopicKey]][]) {
    if (!used.has(key) && !memory.has(key)) continue;
    const parts = node.partitions === 1 ? '1 partition' : `${partitions} partitions`;
    const where = memory.has(key) ? 'in memory in this cut (not written)' : `${parts}, ${node.retention === 'compact' ? 'compacted' : 'kept'}${node.ingest ? ', ingest writes it' : ''}`;
    lines.push(`  ${t[key].padEnd(width)}  ${where}: ${node.what}`);
  }
  lines.push('', 'stages (each a consumer group <prefix>.<stage>, with a dead-letter topic <prefix>.<stage>.dlq):');
  for (const s of stages) {
    const flags = [s.exclusive ? 'one active instance, others standby' : 'scales out', s.callsLlm ? 'calls the LLM' : ''].filter(Boolean).join('; ');
    lines.push(`  ${s.name}: ${s.what} (${flags})`);
    lines.push(`    reads   ${t[s.reads]}  [group ${stageGroup(t, s.name)}]`);
    if (s.writes.length > 0) lines.push(`    writes  ${s.writes.map((w) => t[w]).join(', ')}`);
    if (s.tables.length > 0) lines.push(`    looks up ${s.tables.map((w) => t[w]).join(', ')}`);
    if (s.fuses) {
      lines.push(`    runs in memory: ${s.fuses.join(', ')}`);
      for (const e of memoryEdges(cut).filter((x) => x.fused === s.name)) lines.push(`      ${e.from} → ${e.to}: ${t[e.topic]} in memory${e.join ? `, joined with ${t[s.reads]}` : ''}${e.written ? ' (also written)' : ''}`);
    }
  }
  return lines.join('\n');
}

const id = (kind: 't' | 's', name: string) => `${kind}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;

/** The same cut as a Mermaid flowchart (docs/architecture.md embeds the two cuts). */
export function topologyMermaid(cut: Topology, prefix = 'ipt'): string {
  const t = pipelineTopics(prefix);
  const stages = cutStages(cut, true).map(stageNode);
  const lines = ['flowchart LR'];
  const topics = new Set<TopicKey>();
  for (const s of stages) {
    for (const k of [s.reads, ...s.writes, ...s.tables]) topics.add(k);
  }
  for (const k of topics) lines.push(`  ${id('t', k)}([${t[k]}])`);
  for (const s of stages) {
    if (s.fuses) {
      lines.push(`  subgraph ${id('s', s.name)}[${s.name}]`);
      for (const m of s.fuses.map(stageNode)) lines.push(`    ${id('s', `${s.name}_${m.name}`)}[${m.name}]`);
      for (const e of memoryEdges(cut).filter((x) => x.fused === s.name)) lines.push(`    ${id('s', `${s.name}_${e.from}`)} -->|${t[e.topic]}| ${id('s', `${s.name}_${e.to}`)}`);
      lines.push('  end');
    } else {
      lines.push(`  ${id('s', s.name)}[${s.name}]`);
    }
    lines.push(`  ${id('t', s.reads)} --> ${id('s', s.name)}`);
    for (const w of s.writes) lines.push(`  ${id('s', s.name)} --> ${id('t', w)}`);
    for (const k of s.tables) if (k !== s.reads) lines.push(`  ${id('t', k)} -.-> ${id('s', s.name)}`);
  }
  return lines.join('\n');
}
