import { kafkaTables } from '../../processors/runtime/tables.ts';
import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { PipelineContext } from '../../processors/pipeline/pipeline-context.ts';
import { pipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import { mixingProcessor } from '../../processors/mixing/mixing-processor.ts';
import type { AugmentedTextRecord, MixedTextRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { Emit } from '../../processors/runtime/processor.ts';
import { AvroSerde } from '../../processors/runtime/serde.ts';

const run: RunConfig = {
  runId: 'r', createdAt: 0, preset: 'none', rounds: 1, convertedTexts: 10, roundSize: 10, ingested: 10, convertFraction: 1, seed: 0, model: 'm',
  maxModelLen: 4096, maxNewTokens: 400, lengthEstimate: 'words', temperature: 0, generalWeight: 0, generalOnExhausted: 'leave', startRound: 0, replayOf: null,
};

/** The mixer over a context whose run table answers this run; its Kafka tables are never started (no general instructions). */
function mixer() {
  const ctx = new PipelineContext(kafkaTables(new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING }), new AvroSerde('http://127.0.0.1:1')), pipelineTopics('p'), { client: () => { throw new Error('no LLM'); }, tokenEstimator: async () => (s) => s.length }, pino({ level: 'silent' }));
  ctx.run = () => run;
  return mixingProcessor(ctx);
}

const text = (i: number): AugmentedTextRecord => ({ id: `t${i}`, runId: 'r', round: 0, converted: true, text: `text number ${i}`, textIds: [`t${i}`], pairs: 1, layout: 'qa', inverted: false, createdAt: 0 });

async function mixIndices(m: ReturnType<typeof mixer>, ids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const i of ids) {
    const r = (await m.mix(text(i))) as Emit<'mixed' | 'state'>[];
    for (const e of r) if (e.to === 'mixed') out.push((e.value as MixedTextRecord).mixIndex);
  }
  return out;
}

describe('the mixer’s counts and the runtime’s commits', () => {
  it('records handled after the last commit and then dropped are mixed again at the same mix indices', async () => {
    const m = mixer();
    expect(await mixIndices(m, [0, 1, 2])).toEqual([0, 1, 2]);
    m.spec.checkpoint!.committed();
    expect(await mixIndices(m, [3, 4])).toEqual([3, 4]);
    // A failed transaction: 3 and 4 are read again.
    m.spec.checkpoint!.abandoned();
    expect(await mixIndices(m, [3, 4, 5])).toEqual([3, 4, 5]);
  });

  it('before any commit, dropping goes back to the start of the run', async () => {
    const m = mixer();
    expect(await mixIndices(m, [0, 1])).toEqual([0, 1]);
    m.spec.checkpoint!.abandoned();
    expect(await mixIndices(m, [0, 1])).toEqual([0, 1]);
  });
});
