import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { clearJudgements, pairSampleKeys, pairSamplesById } from '../../connectors/clickhouse/judge-queries.ts';
import { isSampledById } from '../../processors/round-feedback/pair-sample.ts';
import { topicEnds } from '../../processors/runtime/topic-ends.ts';
import { scanSegments } from '../../processors/runtime/topic-scan.ts';
import { JUDGE_CATEGORIES, judgementId, judgePrompt, parseJudgement, Reservoir, wilsonInterval, type Judgement, type Rate } from '../../processors/evaluation/judge.ts';
import type { LlmClient } from '../../processors/pipeline/llm-port.ts';
import { recordKey, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
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
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface RoundVerdicts {
  round: number;
  /** Pairs the reservoir drew from: those of the texts sampled by id, or all the round's sampled pairs (byIdOnly false). */
  candidates: number;
  byIdOnly: boolean;
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
  /** The start of the text, as the sample kept it, and the whole text's length. */
  context: string;
  context_chars: number;
}

const verdictRow = (o: JudgeOptions, c: Candidate, v: Judgement | { error: string }) => {
  const time = Date.now();
  const ok = !('error' in v);
  return {
    id: judgementId(o.runId, c.round, c.record_id, c.pair_index, o.judgeModel),
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
 * pair_samples), each judged against its whole text (read back from the raw topic), the verdicts stored in ClickHouse's
 * judgements as they come (a run judged again by the same model replaces its earlier verdicts), and the rates with
 * their intervals and the category shares reported.
 */
export async function judgeRun(o: JudgeOptions): Promise<JudgeReport> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const keys = await pairSampleKeys(o.ch, o.runId);
  // Uniform over a round's texts: the texts sampled by id (one in SAMPLE_EVERY), not the round's first few that the
  // dashboard's sample also keeps; a round with none of those (a small one) draws from all it has.
  const byRound = new Map<number, typeof keys>();
  for (const k of keys) byRound.set(k.round, [...(byRound.get(k.round) ?? []), k]);
  const reservoirs = new Map<number, { reservoir: Reservoir<(typeof keys)[number]>; byIdOnly: boolean }>();
  for (const [round, all] of byRound) {
    const byId = all.filter((k) => isSampledById(k.record_id));
    const pool = byId.length > 0 ? byId : all;
    const reservoir = new Reservoir<(typeof keys)[number]>(o.sample, `${o.seed}/${o.runId}/${round}`);
    for (const k of pool) reservoir.offer(k);
    reservoirs.set(round, { reservoir, byIdOnly: byId.length > 0 });
  }
  const chosenKeys = [...reservoirs.values()].flatMap((r) => r.reservoir.items);
  log(`judge: run ${o.runId}: ${chosenKeys.length} pairs sampled from ${keys.length} in ${byRound.size} round(s)`);
  const empty = { relevant: wilsonInterval(0, 0), accurate: wilsonInterval(0, 0) };
  if (chosenKeys.length === 0) {
    return { runId: o.runId, judgeModel: o.judgeModel, sampled: 0, judged: 0, unreadable: 0, failed: 0, ...empty, categories: [], rounds: [], contextFromSample: 0, problems: [], seconds: Math.round((Date.now() - started) / 100) / 10 };
  }
  const details = await pairSamplesById(o.ch, o.runId, chosenKeys);
  const chosen: Candidate[] = chosenKeys.map((k) => ({ ...k, ...(details.get(`${k.record_id}/${k.pair_index}`) ?? { question: '', answer: '', context: '', context_chars: 0 }) }));

  // Each pair is judged against its whole text, read back from the raw topic (the sample keeps only its start); the
  // scan ends once every text is found.
  const wanted = new Set(chosen.map((c) => recordKey(o.runId, c.record_id)));
  const texts = new Map<string, string>();
  const schema = loadSchema('raw-text');
  const segments = (await topicEnds(o.kafka, o.topics.raw)).map((e) => ({ partition: e.partition, from: BigInt(e.low), to: BigInt(e.high) }));
  const total = segments.reduce((n, x) => n + Number(x.to - x.from), 0);
  const reading = new ProgressLine(total, 'records');
  let read = 0;
  await scanSegments(
    o.kafka,
    o.topics.raw,
    segments,
    async (messages) => {
      read += messages.length;
      if (total >= 10_000) {
        const line = reading.update(read);
        if (line !== undefined) log(`judge: reading the texts back: ${line}`);
      }
      const mine = messages.filter((m) => wanted.has(m.key?.toString() ?? ''));
      if (mine.length === 0) return;
      await o.serde.prefetch(mine.map((m) => m.value));
      for (const m of mine) {
        try {
          const r = o.serde.decode(m.value, schema) as RawTextRecord;
          texts.set(recordKey(o.runId, r.id), r.text);
        } catch {
          // an undecodable raw record was dead-lettered by the stage; the sample's start of text stands in
        }
      }
    },
    { what: 'judge', enough: () => texts.size >= wanted.size, timeoutMs: 6 * 3600_000 },
  );

  // A run judged again by this model: its earlier verdicts go (another seed or sample would otherwise add to them).
  await clearJudgements(o.ch, o.runId, o.judgeModel);
  let contextFromSample = 0;
  const verdicts: { c: Candidate; v: Judgement | { error: string }; failed: boolean }[] = [];
  const pending: ReturnType<typeof verdictRow>[] = [];
  const flush = async () => {
    if (pending.length > 0) await o.ch.insert({ table: 'judgements', format: 'JSONEachRow', values: pending.splice(0) });
  };
  const judging = new ProgressLine(chosen.length, 'pairs');
  // A bounded number in flight, so each request's deadline starts when it is sent, not when the job began.
  let next = 0;
  const worker = async () => {
    while (next < chosen.length) {
      const c = chosen[next++]!;
      const whole = texts.get(recordKey(o.runId, c.record_id));
      let v: Judgement | { error: string };
      let failed = false;
      if (whole === undefined && c.context === '') v = { error: 'its text is neither in the raw topic nor in the sample' };
      else {
        if (whole === undefined) contextFromSample++;
        try {
          const prompt = judgePrompt({ context: whole ?? c.context, question: c.question, answer: c.answer, partial: whole === undefined && c.context_chars > c.context.length });
          v = parseJudgement((await o.judge.complete({ prompt, maxTokens: o.maxTokens ?? 96, temperature: 0 })).text);
        } catch (err) {
          v = { error: `the judge failed: ${(err as Error).message}` };
          failed = true;
        }
      }
      verdicts.push({ c, v, failed });
      pending.push(verdictRow(o, c, v));
      if (pending.length >= 50) await flush();
      const line = judging.update(verdicts.length);
      if (line !== undefined) log(`judge: ${line} judged`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 8) }, worker));
  await flush();
  const ok = verdicts.filter((x): x is { c: Candidate; v: Judgement; failed: boolean } => !('error' in x.v));
  const rates = (xs: typeof ok) => ({ relevant: wilsonInterval(xs.filter((x) => x.v.relevant).length, xs.length), accurate: wilsonInterval(xs.filter((x) => x.v.accurate).length, xs.length) });
  const counts = new Map<string, number>();
  for (const x of ok) counts.set(x.v.category, (counts.get(x.v.category) ?? 0) + 1);
  const categories = JUDGE_CATEGORIES.filter((c) => counts.has(c)).map((category) => ({ category, pairs: counts.get(category)!, share: counts.get(category)! / ok.length }));
  categories.sort((a, b) => b.pairs - a.pairs);
  const rounds = [...reservoirs.entries()]
    .sort(([a], [b]) => a - b)
    .map(([round, { reservoir, byIdOnly }]) => {
      const mine = ok.filter((x) => x.c.round === round);
      return { round, candidates: reservoir.seen, byIdOnly, sampled: reservoir.items.length, judged: mine.length, ...rates(mine) };
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
