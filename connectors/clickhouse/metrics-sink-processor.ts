import type { ClickHouseClient } from '@clickhouse/client';
import { defineProcessor, stageOf } from '../../processors/runtime/processor.ts';
import { stageGroup } from '../../processors/pipeline/pipeline-topics.ts';
import type { PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { MetricEventBatchRecord, MetricEventRecord } from '../../processors/pipeline/records.ts';
import { createLogger } from '../../processors/runtime/logger.ts';
import { BatchInserter, RowRejectedError, type InserterOptions } from './batch-inserter.ts';

// ClickHouse 18.16 fills an omitted JSONEachRow field with the type's zero, not its DEFAULT expression.
const seconds = (ms: number) => Math.floor(ms / 1000);

export interface TableRow {
  table: string;
  row: Record<string, unknown>;
}

/**
 * A metric event as rows (connectors/clickhouse/migrations): its row in its kind's table, then, for a sampled
 * synthesis text, a pair_samples row per pair. version = when it was stored, so the newest copy wins.
 */
export function metricRows(m: MetricEventRecord): TableRow[] {
  const version = Date.now();
  if (m.kind === 'evaluation') {
    return [{
      table: 'evaluations',
      row: { id: m.id, run_id: m.runId, record_id: m.recordId, time_ms: m.time, time: seconds(m.time), dataset: m.dataset, shots: m.shots, seen: m.seen ? 1 : 0, f1: m.f1, exact_match: m.exactMatch, response: m.response, latency_ms: m.latencyMs, version },
    }];
  }
  if (m.kind === 'judgement') {
    const j = m.judgement;
    if (!j) throw new Error(`metric event ${m.id}: a judgement without its verdict`);
    // The row `ipt judge` writes for the same pair and model (same id), so either replaces the other.
    return [{
      table: 'judgements',
      row: { id: m.id, run_id: m.runId, round: m.round, record_id: m.recordId, pair_index: j.pairIndex, judge_model: j.judgeModel, time_ms: m.time, time: seconds(m.time), judged: j.judged ? 1 : 0, relevant: j.relevant ? 1 : 0, accurate: j.accurate ? 1 : 0, category: j.category, error: j.error, question: j.question, answer: j.answer },
    }];
  }
  if (m.kind !== 'synthesis') throw new Error(`metric event ${m.id}: unknown kind "${m.kind}"`);
  const rows: TableRow[] = [{
    table: 'synthesis_metrics',
    row: {
      id: m.id,
      run_id: m.runId,
      round: m.round,
      record_id: m.recordId,
      time_ms: m.time,
      time: seconds(m.time),
      outcome: m.outcome,
      few_shot: m.fewShot ? 1 : 0,
      pairs: m.pairs,
      parsed_pieces: m.parsedPieces,
      parse_ok: m.parseOk ? 1 : 0,
      kind_free: m.kindFree,
      kind_mc: m.kindMc,
      kind_cot: m.kindCot,
      kind_mc_cot: m.kindMcCot,
      text_chars: m.textChars,
      output_chars: m.outputChars,
      question_chars: m.questionChars,
      answer_chars: m.answerChars,
      grounding: m.grounding,
      latency_ms: m.latencyMs,
      prompt_tokens: m.promptTokens,
      completion_tokens: m.completionTokens,
      finish_reason: m.finishReason,
      truncated: m.finishReason === 'length' ? 1 : 0,
      version,
    },
  }];
  const sample = m.sample;
  if (sample) {
    for (const [i, p] of sample.pairs.entries()) {
      rows.push({
        table: 'pair_samples',
        row: {
          id: `${m.id}/${i}`,
          run_id: m.runId,
          round: m.round,
          record_id: m.recordId,
          time_ms: m.time,
          time: seconds(m.time),
          few_shot: m.fewShot ? 1 : 0,
          pair_index: i,
          kind: p.kind,
          question: p.question,
          answer: p.answer,
          context: sample.context,
          context_chars: sample.contextChars,
          version,
        },
      });
    }
  }
  return rows;
}

/**
 * Metric event batches → ClickHouse rows, inserted in batches; offsets are committed only after the rows are stored.
 * While ClickHouse is unreachable the handler waits (BatchInserter retries), so the sink holds its offsets and
 * nothing is dead-lettered; past the outage budget (IPT_CLICKHOUSE_OUTAGE_MS) the handler fails and the batch is
 * dead-lettered with a reason naming ClickHouse. An event that has no table, or whose row ClickHouse refuses as data,
 * is named in the batch's dead letter; the batch's other events are stored.
 */
export function metricsSinkProcessor(topics: PipelineTopics, ch: ClickHouseClient, opts: InserterOptions = {}) {
  const name = stageGroup(topics, 'clickhouse-sink');
  const inserter = new BatchInserter(ch, 1000, 100, { logger: createLogger('instruct-pt').child({ processor: name }), ...opts });
  return stageOf(
    defineProcessor<MetricEventBatchRecord, never>({
    name,
    input: { topics: [topics.metrics], schema: 'metric-event-batch' },
    outputs: {} as Record<never, { topic: string; schema: string }>,
    handle: async ({ value }) => {
      const stored: { id: string; done: Promise<void> }[] = [];
      const bad: string[] = [];
      for (const event of value.events) {
        let rows: TableRow[];
        try {
          rows = metricRows(event);
        } catch (err) {
          bad.push((err as Error).message);
          continue;
        }
        stored.push({ id: event.id, done: Promise.all(rows.map((r) => inserter.add(r.table, r.row))).then(() => undefined) });
      }
      const settled = await Promise.allSettled(stored.map((s) => s.done));
      for (const [i, s] of settled.entries()) {
        if (s.status === 'fulfilled') continue;
        // Only a row refused as data is this event's own failure; anything else (an outage beyond the budget) fails the batch.
        if (!(s.reason instanceof RowRejectedError)) throw s.reason;
        bad.push(`metric event ${stored[i]!.id}: ${s.reason.message}`);
      }
      return bad.length === 0 ? [] : { emits: [], deadLetter: `${bad.length} of ${value.events.length} events not stored: ${bad.slice(0, 5).join('; ')}` };
    },
  }),
  );
}
