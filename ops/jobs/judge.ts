import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { pairSampleContexts, pairSamplesOfRun } from '../../connectors/clickhouse/run-queries.ts';
import { JUDGE_CATEGORIES, judgePrompt, parseJudgement, Reservoir, wilsonInterval, type Judgement, type Rate } from '../../processors/evaluation/judge.ts';
import type { LlmClient } from '../../processors/pipeline/llm-port.ts';
import { recordKey, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { scanToEnd } from '../../processors/runtime/topic-io.ts';
import { ProgressLine } from './progress-line.ts';

export interface JudgeOptions {
  ch: ClickHouseClient;
  kafka: Kafka;
  serde: AvroSerde;
  topics: PipelineTopics;
  runId: string;
  /** Pairs judged per round, at most (the paper: 500). */
  sample: number;
  seed: number;
  judge: LlmClient;
  judgeModel: string;
  /** Tokens the judge may write: the JSON answer is short. */
  maxTokens?: number;
  log?: (line: string) => void;
}

export interface RoundVerdicts {
  round: number;
  /** Pairs the round's sampled texts hold (what the reservoir drew from). */
  candidates: number;
  sampled: number;
  judged: number;
  relevant: Rate;
  accurate: Rate;
}

export interface JudgeReport {
  runId: string;
  judgeModel: string;
  sampled: number;
  judged: number;
  /** Answers that could not be read (their reasons in `problems`), and requests that failed for good. */
  unreadable: number;
  failed: number;
  relevant: Rate;
  accurate: Rate;
  categories: { category: string; pairs: number; share: number }[];
  rounds: RoundVerdicts[];
  /** Sampled pairs whose text was no longer in the raw topic: judged on the start of the text the sample kept. */
  contextFromSample: number;
  problems: string[];
  seconds: number;
}

interface Candidate {
  round: number;
  record_id: string;
  pair_index: number;
  question: string;
  answer: string;
}

const verdictRow = (o: JudgeOptions, c: Candidate, v: Judgement | { error: string }) => {
  const time = Date.now();
  const ok = !('error' in v);
  return {
    id: `${o.runId}/${c.round}/${c.record_id}/${c.pair_index}/${o.judgeModel}`,
    run_id: o.runId,
    round: c.round,
    record_id: c.record_id,
    pair_index: c.pair_index,
    judge_model: o.judgeModel,
    time_ms: time,
    time: Math.floor(time / 1000),
    judged: ok ? 1 : 0,
    relevant: ok && v.relevant ? 1 : 0,
    accurate: ok && v.accurate ? 1 : 0,
    category: ok ? v.category : '',
    error: ok ? '' : v.error,
    question: c.question,
    answer: c.answer,
  };
};

/**
 * The LLM judge over a finished run (docs/method.md §7.4): a uniform sample of each round's sampled pairs (ClickHouse's
 * pair_samples), each judged with its whole text (read back from the raw topic), the verdicts stored in ClickHouse's
 * judgements (one row per pair and judge model: a run judged again replaces its rows), and the rates with their
 * intervals and the category shares reported.
 */
export async function judgeRun(o: JudgeOptions): Promise<JudgeReport> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const candidates = await pairSamplesOfRun(o.ch, o.runId);
  const byRound = new Map<number, Reservoir<Candidate>>();
  for (const c of candidates) {
    let r = byRound.get(c.round);
    if (!r) byRound.set(c.round, (r = new Reservoir<Candidate>(o.sample, `${o.seed}/${o.runId}/${c.round}`)));
    r.offer(c);
  }
  const chosen = [...byRound.values()].flatMap((r) => r.items);
  log(`judge: run ${o.runId}: ${chosen.length} pairs sampled from ${candidates.length} in ${byRound.size} round(s)`);

  // Each pair is judged against its whole text, read back from the raw topic (the sample keeps only its start).
  const wanted = new Map(chosen.map((c) => [recordKey(o.runId, c.record_id), c.record_id]));
  const texts = new Map<string, string>();
  const schema = loadSchema('raw-text');
  let reading: ProgressLine | undefined;
  const readProgress = (read: number, total: number) => {
    if (total < 10_000) return;
    const line = (reading ??= new ProgressLine(total, 'records')).update(read);
    if (line !== undefined) log(`judge: reading the texts back: ${line}`);
  };
  await scanToEnd(o.kafka, o.topics.raw, async (messages) => {
    const mine = messages.filter((m) => wanted.has(m.key?.toString() ?? ''));
    if (mine.length === 0) return;
    await o.serde.prefetch(mine.map((m) => m.value));
    for (const m of mine) {
      try {
        const r = o.serde.decode(m.value, schema) as RawTextRecord;
        texts.set(r.id, r.text);
      } catch {
        // an undecodable raw record was dead-lettered by the stage; the sample's start of text stands in
      }
    }
  }, undefined, readProgress);
  let contextFromSample = 0;
  const heads = chosen.some((c) => !texts.has(c.record_id)) ? await pairSampleContexts(o.ch, o.runId) : new Map<string, string>();

  const judging = new ProgressLine(chosen.length, 'pairs');
  let done = 0;
  const verdicts = await Promise.all(
    chosen.map(async (c) => {
      let context = texts.get(c.record_id);
      if (context === undefined) {
        context = heads.get(c.record_id) ?? '';
        contextFromSample++;
      }
      try {
        const res = await o.judge.complete({ prompt: judgePrompt({ context, question: c.question, answer: c.answer }), maxTokens: o.maxTokens ?? 96, temperature: 0 });
        return { c, v: parseJudgement(res.text), failed: false };
      } catch (err) {
        return { c, v: { error: `the judge failed: ${(err as Error).message}` }, failed: true };
      } finally {
        const line = judging.update(++done);
        if (line !== undefined) log(`judge: ${line} judged`);
      }
    }),
  );
  if (verdicts.length > 0) {
    await o.ch.insert({ table: 'judgements', format: 'JSONEachRow', values: verdicts.map(({ c, v }) => verdictRow(o, c, v)) });
  }

  const ok = verdicts.filter((x): x is { c: Candidate; v: Judgement; failed: boolean } => !('error' in x.v));
  const rates = (xs: typeof ok) => ({ relevant: wilsonInterval(xs.filter((x) => x.v.relevant).length, xs.length), accurate: wilsonInterval(xs.filter((x) => x.v.accurate).length, xs.length) });
  const counts = new Map<string, number>();
  for (const x of ok) counts.set(x.v.category, (counts.get(x.v.category) ?? 0) + 1);
  const categories = JUDGE_CATEGORIES.filter((c) => counts.has(c)).map((category) => ({ category, pairs: counts.get(category)!, share: counts.get(category)! / ok.length }));
  categories.sort((a, b) => b.pairs - a.pairs);
  const rounds = [...byRound.entries()]
    .sort(([a], [b]) => a - b)
    .map(([round, r]) => {
      const mine = ok.filter((x) => x.c.round === round);
      return { round, candidates: r.seen, sampled: r.items.length, judged: mine.length, ...rates(mine) };
    });
  const problems = verdicts.filter((x) => 'error' in x.v).map((x) => `${x.c.record_id} pair ${x.c.pair_index}: ${(x.v as { error: string }).error}`);
  return {
    runId: o.runId,
    judgeModel: o.judgeModel,
    sampled: chosen.length,
    judged: ok.length,
    unreadable: verdicts.filter((x) => !x.failed && 'error' in x.v).length,
    failed: verdicts.filter((x) => x.failed).length,
    ...rates(ok),
    categories,
    rounds,
    contextFromSample,
    problems: problems.slice(0, 20),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
