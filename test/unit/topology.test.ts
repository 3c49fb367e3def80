import { kafkaTables } from '../../processors/runtime/tables.ts';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import type { ClickHouseClient } from '@clickhouse/client';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { FUSED_STAGES, pipelineTopics, STAGES, TOPOLOGIES, topicSpecs, type StageName } from '../../processors/pipeline/pipeline-topics.ts';
import { consumedTopics, cutStages, inMemoryTopics, memoryEdges, readersOf, STAGE_GRAPH, stageNode, TOPICS, type TopicKey } from '../../processors/pipeline/topology.ts';
import { describeTopology, topologyMermaid } from '../../processors/pipeline/describe-topology.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';
import { templatingProcessor } from '../../processors/templating/templating-processor.ts';
import { templatingPoolProcessor } from '../../processors/templating/templating-pool-processor.ts';
import { synthesisProcessor } from '../../processors/synthesis/synthesis-processor.ts';
import { roundFeedbackProcessor } from '../../processors/round-feedback/round-feedback-processor.ts';
import { mixingProcessor } from '../../processors/mixing/mixing-processor.ts';
import { evaluationProcessor } from '../../processors/evaluation/evaluation-processor.ts';
import { fusedProcessor } from '../../processors/pipeline/fused-processor.ts';
import { judgeProcessor } from '../../processors/evaluation/judge-processor.ts';
import { metricsSinkProcessor } from '../../connectors/clickhouse/metrics-sink-processor.ts';
import { consumersOf } from '../../ops/jobs/replay.ts';
import type { ProcessorSpec } from '../../processors/runtime/processor.ts';

const t = pipelineTopics('p');
const silent = pino({ level: 'silent' });

/** Every stage's processor, built but never started (nothing connects: the clients are created, not used). */
function processorSpecs(): Record<StageName, ProcessorSpec<never, string>> {
  const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING });
  const ctx = new PipelineContext(kafkaTables(kafka, new AvroSerde('http://127.0.0.1:1')), t, { client: () => ({ complete: () => Promise.reject(new Error('no LLM')), countTokens: async () => undefined }), tokenEstimator: async () => (s) => s.length }, silent);
  const specs = {
    templating: templatingProcessor(ctx).spec,
    'templating-pool': templatingPoolProcessor(ctx).spec,
    synthesis: synthesisProcessor(ctx).spec,
    'round-feedback': roundFeedbackProcessor(ctx).spec,
    fused: fusedProcessor(ctx).spec,
    mixing: mixingProcessor(ctx).spec,
    evaluation: evaluationProcessor(ctx, { model: 'm', maxNewTokens: 8, temperature: 0 }).spec,
    judge: judgeProcessor(ctx, { complete: () => Promise.reject(new Error('no LLM')), countTokens: async () => undefined }, { model: 'j', perRound: 1 }).spec,
    'clickhouse-sink': metricsSinkProcessor(t, {} as ClickHouseClient, { logger: silent }).spec,
  };
  return specs as unknown as Record<StageName, ProcessorSpec<never, string>>;
}

describe('the topology as data', () => {
  it('has one node per stage, over known topics', () => {
    expect(STAGE_GRAPH.map((s) => s.name).sort()).toEqual([...STAGES].sort());
    for (const s of STAGE_GRAPH) for (const k of [s.reads, ...s.writes, ...s.tables]) expect(Object.keys(TOPICS)).toContain(k);
  });

  it('matches what every stage’s processor reads and writes', () => {
    const specs = processorSpecs();
    for (const s of STAGE_GRAPH) {
      const spec = specs[s.name];
      expect(spec.input.topics, s.name).toEqual([t[s.reads]]);
      const written = Object.values(spec.outputs).map((o) => (o as { topic: string }).topic);
      expect([...new Set(written)].sort(), s.name).toEqual(s.writes.map((k) => t[k]).sort());
    }
  });

  it('derives the two cuts, the fused stage’s members and their in-memory edges', () => {
    expect(TOPOLOGIES.staged).toEqual(['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing', 'evaluation', 'clickhouse-sink']);
    expect(TOPOLOGIES.fused).toEqual(['fused', 'evaluation', 'clickhouse-sink']);
    // The judge runs where a judge is configured (startPipeline adds it then): in both cuts, as their descriptions show.
    expect(stageNode('judge').configured).toMatch(/--judge-url/);
    expect(cutStages('staged', true)).toEqual(['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing', 'evaluation', 'judge', 'clickhouse-sink']);
    expect(cutStages('fused', true)).toEqual(['fused', 'evaluation', 'judge', 'clickhouse-sink']);
    expect(FUSED_STAGES).toEqual(['templating', 'templating-pool', 'synthesis', 'round-feedback', 'mixing']);
    expect(inMemoryTopics('fused').sort()).toEqual<TopicKey[]>(['requests', 'results']);
    expect(inMemoryTopics('staged')).toEqual([]);
    // Round feedback hands collections to the next round's templating and texts to the mixer in memory, and writes both.
    expect(memoryEdges('fused').filter((e) => e.written).map((e) => `${e.from}>${e.to}:${e.topic}`).sort()).toEqual([
      'round-feedback>mixing:augmented',
      'round-feedback>templating-pool:pool',
      'templating-pool>mixing:augmented',
      'templating>mixing:augmented',
    ]);
    expect(stageNode('mixing').exclusive && stageNode('fused').exclusive).toBe(true);
    // The round pool meets the next round's text, the fused stage's own input: the one join edge.
    expect(memoryEdges('fused').filter((e) => e.join).map((e) => `${e.from}>${e.to}:${e.topic}`)).toEqual(['round-feedback>templating-pool:pool']);
  });

  it('derives topic specs, replay’s readers and the lag sampler’s topics', () => {
    const specs = topicSpecs(t, 6);
    expect(specs.find((s) => s.topic === t.mixed)).toMatchObject({ partitions: 1, config: { 'retention.ms': '-1' } });
    expect(specs.find((s) => s.topic === t.raw)).toMatchObject({ partitions: 6 });
    expect(specs.find((s) => s.topic === t.mixerState)).toMatchObject({ partitions: 1, config: { 'cleanup.policy': 'compact' } });
    expect(specs.filter((s) => s.topic.endsWith('.dlq')).map((s) => s.topic).sort()).toEqual(STAGES.map((s) => `p.${s}.dlq`).sort());
    expect(specs).toHaveLength(Object.keys(TOPICS).length + STAGES.length);
    expect(readersOf('raw')).toEqual(['templating', 'fused']);
    expect(consumersOf(t, t.results)).toEqual(['round-feedback']);
    expect(() => consumersOf(t, t.mixed)).toThrow(/no pipeline stage reads p\.train\.mixed \(replayable: p\.raw\.texts, p\.round\.pool/);
    expect(consumedTopics()).toEqual<TopicKey[]>(['raw', 'pool', 'requests', 'results', 'augmented', 'evalRecords', 'metrics']);
  });

  it('describes a cut as text and as a Mermaid flowchart', () => {
    const fused = describeTopology('fused', 'p', 4);
    expect(fused).toContain('p.synth.requests        in memory in this cut (not written)');
    expect(fused).toContain('round-feedback → templating-pool: p.round.pool in memory, joined with p.raw.texts (also written)');
    expect(describeTopology('staged', 'p')).not.toContain('in memory');
    const m = topologyMermaid('staged', 'p');
    expect(m.split('\n')[0]).toBe('flowchart LR');
    expect(m).toContain('t_requests --> s_synthesis');
    expect(m).toContain('t_general -.-> s_mixing');
    expect(topologyMermaid('fused', 'p')).toContain('s_fused_synthesis -->|p.synth.results| s_fused_round_feedback');
  });
});

describe('the topology in the docs', () => {
  it('docs/architecture.md shows the current Mermaid output of both cuts', () => {
    const doc = readFileSync('docs/architecture.md', 'utf8');
    for (const cut of ['staged', 'fused'] as const) expect(doc, `regenerate with: ipt pipeline describe --mermaid --topology ${cut}`).toContain(`\`\`\`mermaid\n${topologyMermaid(cut)}\n\`\`\``);
  });
});
