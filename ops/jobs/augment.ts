import cliProgress from 'cli-progress';
import { readTextRecords } from '../../connectors/files/text-records.ts';
import { JsonlWriter } from '../../connectors/files/jsonl-writer.ts';
import { SynthesisPool } from '../../connectors/llm/synthesis-pool.ts';
import { checkLlmEndpoints } from '../../connectors/llm/preflight.ts';
import { hashString } from '../../processors/pretrain-text/seeded-random.ts';
import { localTokenizerEstimator, serverTokenEstimator } from '../../connectors/llm/token-estimators.ts';
import { guidedFields, type GrammarBounds, type GuidedDecoding } from '../../connectors/llm/pair-grammar.ts';
import { wordsEstimate, type LengthEstimator } from '../../processors/templating/length-estimators.ts';
import { finishRound, planRound, roundRanges, type Collection, type LengthBudget } from '../../processors/templating/multi-round.ts';
import { formatSynthesizerInput, type QAPair } from '../../processors/templating/synthesizer-format.ts';
import { parseSynthesizerOutput, plainPairs } from '../../processors/round-feedback/parse-output.ts';
import { templateCollection } from '../../processors/pretrain-text/template-collection.ts';

export interface AugmentOptions {
  input: string;
  output: string;
  collectionsOutput?: string;
  rounds: number;
  /** One or more OpenAI-compatible base URLs, comma-separated. */
  llmUrl: string;
  model: string;
  maxModelLen: number;
  maxNewTokens: number;
  lengthEstimate: 'words' | 'tokens';
  tokenizer?: string;
  temperature: number;
  seed: number;
  concurrency: number;
  retries: number;
  timeoutMs: number;
  /** How long one text may wait for its completion, retries and endpoint outages included (default 10 minutes). */
  deadlineMs?: number;
  /** Prompts per request (a prompt array) where the server accepts it; 1 sends one per request. */
  batchPrompts?: number;
  /** Constrain the output to the pair format: `gbnf` (llama.cpp `grammar`), `regex` (vLLM/SGLang), or `off`. */
  guided?: GuidedDecoding;
  grammarBounds?: GrammarBounds;
  /** Extra request fields for the server (e.g. llama.cpp's repeat_penalty). */
  extraBody?: Record<string, unknown>;
  progress: boolean;
  log: (line: string) => void;
}

export interface RoundSummary {
  round: number;
  texts: number;
  fewShot: number;
  llmCalls: number;
  failed: number;
  pairs: number;
}

export interface AugmentSummary {
  textsIn: number;
  rejectedLines: number;
  rejects: { line: number; reason: string }[];
  emptyTexts: number;
  tooLong: { id: string; line: number; length: number }[];
  failed: { id: string; line: number; round: number; reason: string }[];
  parseFailures: number;
  pairsOut: number;
  pairsPerText: number;
  outputTexts: number;
  collections: number;
  rounds: RoundSummary[];
  promptTokens: number;
  completionTokens: number;
  seconds: number;
}

interface InputText {
  id: string;
  text: string;
  line: number;
}

/**
 * The embedded batch job: the multi-round method of docs/method.md §3 (batch form, exactly), with the synthesizer behind
 * any OpenAI-compatible completions endpoint, and the collections templated into pre-training texts (docs/method.md §4).
 * A line that is not a usable text (processors/templating/text-checks.ts), or reuses an earlier line's id, is rejected by line and takes no
 * place in the rounds. A text the model cannot take (empty, longer than the model even alone, or failed after every
 * retry) keeps its place as a raw text with no pairs and is reported; the round goes on.
 */
export async function runAugment(opts: AugmentOptions): Promise<AugmentSummary> {
  const started = Date.now();
  const texts: InputText[] = [];
  const rejects: { line: number; reason: string }[] = [];
  // An id names one text, as in `pipeline run`: a later line reusing it is rejected, naming the line that has it.
  const seen = new Map<string, number>();
  const reject = (line: number, reason: string) => {
    rejects.push({ line, reason });
    opts.log(`augment: rejected ${reason}`);
  };
  for await (const r of readTextRecords(opts.input)) {
    if (!r.ok) reject(r.line, r.reason);
    else if (seen.has(r.id)) reject(r.line, `${opts.input}:${r.line}: id "${r.id}" already used on line ${seen.get(r.id)}`);
    else {
      seen.set(r.id, r.line);
      texts.push({ id: r.id, text: r.text, line: r.line });
    }
  }
  const client = new SynthesisPool({
    endpoints: opts.llmUrl.split(',').map((u) => u.trim()).filter(Boolean),
    model: opts.model,
    initialWindow: Math.min(8, opts.concurrency),
    maxWindow: opts.concurrency,
    maxAttempts: opts.retries + 1,
    timeoutMs: opts.timeoutMs,
    ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
    backoffMs: 500,
    batchPrompts: opts.batchPrompts ?? 1,
    extraBody: { ...opts.extraBody, ...guidedFields(opts.guided ?? 'off', opts.grammarBounds) },
  });
  for (const w of await checkLlmEndpoints(client, { needTokenize: opts.lengthEstimate === 'tokens' && !opts.tokenizer, setting: '--llm-url' })) opts.log(`augment: ${w}`);
  const estimate: LengthEstimator =
    opts.lengthEstimate === 'words' ? wordsEstimate : opts.tokenizer ? localTokenizerEstimator(opts.tokenizer) : await serverTokenEstimator(client);
  const budget: LengthBudget = { maxModelLen: opts.maxModelLen, maxNewTokens: opts.maxNewTokens, estimate };
  const limit = opts.maxModelLen - opts.maxNewTokens;

  const summary: AugmentSummary = {
    textsIn: texts.length,
    rejectedLines: rejects.length,
    rejects,
    emptyTexts: 0,
    tooLong: [],
    failed: [],
    parseFailures: 0,
    pairsOut: 0,
    pairsPerText: 0,
    outputTexts: 0,
    collections: 0,
    rounds: [],
    promptTokens: 0,
    completionTokens: 0,
    seconds: 0,
  };
  const bar = opts.progress ? new cliProgress.SingleBar({ format: 'augment |{bar}| {value}/{total} texts | round {round} | {pairs} pairs', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(texts.length, 0, { round: 0, pairs: 0 });

  let collections: Collection[] = [];
  for (const [round, [start, end]] of roundRanges(texts.length, opts.rounds).entries()) {
    const roundTexts = texts.slice(start, end);
    const plan = await planRound(round, roundTexts.map((t) => t.text), collections, budget);
    const rs: RoundSummary = { round, texts: roundTexts.length, fewShot: plan.plans.filter((p) => p.fewShot).length, llmCalls: 0, failed: 0, pairs: 0 };
    const pairsPerText = await Promise.all(
      roundTexts.map(async (t, i): Promise<QAPair[]> => {
        const prompt = plan.plans[i]!.prompt;
        try {
          if (t.text === '') {
            summary.emptyTexts++;
            return [];
          }
          if (!plan.plans[i]!.fewShot) {
            const length = await estimate(formatSynthesizerInput(t.text));
            if (length > limit) {
              summary.tooLong.push({ id: t.id, line: t.line, length });
              opts.log(`augment: ${opts.input}:${t.line} (${t.id}): ${length} > ${limit} (max-model-len − max-new-tokens) even without examples; kept as raw text`);
              return [];
            }
          }
          rs.llmCalls++;
          // A collection keeps one affinity key across rounds (its first text), so its growing few-shot history goes
          // back to the endpoint whose prefix cache holds it.
          const affinityKey = String(hashString(plan.plans[i]!.collection?.[0]?.context ?? t.text));
          const res = await client.complete({ prompt, maxTokens: opts.maxNewTokens, temperature: opts.temperature, affinityKey });
          summary.promptTokens += res.promptTokens ?? 0;
          summary.completionTokens += res.completionTokens ?? 0;
          const pairs = plainPairs(parseSynthesizerOutput(res.text));
          if (pairs.length === 0) summary.parseFailures++;
          rs.pairs += pairs.length;
          return pairs;
        } catch (err) {
          rs.failed++;
          const reason = (err as Error).message;
          summary.failed.push({ id: t.id, line: t.line, round, reason });
          opts.log(`augment: ${opts.input}:${t.line} (${t.id}): synthesis failed in round ${round}: ${reason}; kept as raw text`);
          return [];
        } finally {
          bar?.increment(1, { round, pairs: summary.pairsOut + rs.pairs });
        }
      }),
    );
    collections = finishRound(plan, pairsPerText);
    summary.pairsOut += rs.pairs;
    summary.rounds.push(rs);
  }
  bar?.stop();

  const out = new JsonlWriter(opts.output);
  const collOut = opts.collectionsOutput ? new JsonlWriter(opts.collectionsOutput) : undefined;
  for (const c of collections) {
    for (const t of templateCollection(c, opts.seed)) {
      // An empty raw text has nothing to train on: it is counted (emptyTexts), not written.
      if (t.text !== '') await out.write({ text: t.text });
    }
    await collOut?.write({ entries: c.map((e) => ({ context: e.context, pairs: e.pairs.map((p) => ({ question: p.question, answer: p.answer })), inheritFromPrev: e.inheritFromPrev })) });
  }
  await out.close();
  await collOut?.close();
  summary.outputTexts = out.count;
  summary.collections = collections.length;
  summary.pairsPerText = texts.length === 0 ? 0 : Math.round((summary.pairsOut / texts.length) * 1000) / 1000;
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
