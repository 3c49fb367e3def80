import type { MetricEventRecord, MixedTextRecord } from '../../processors/pipeline/records.ts';
import { judgeablePairs } from '../../processors/evaluation/judge-processor.ts';
import { Bits, NumberColumn } from '../../connectors/files/compact-ids.ts';
import type { MixedSpool } from '../../connectors/files/mixed-spool.ts';

export interface DeadLetter {
  id: string;
  stage: string;
  reason: string;
  /** Its outputs went out too (a failed synthesis: its result, and so its metric event, still follow). */
  withOutputs: boolean;
}

/** One pre-training text a run's domain texts became: from its augmented text, or from its mixed record. */
export interface DomainOutput {
  id: string;
  converted: boolean;
  textIds: string[];
  pairs: number;
  empty: boolean;
}

/**
 * A run's texts as the monitor counts them: each by a slot (0…size−1) instead of its id, so what is known of each
 * text is a few bits. A slot `has` says is a text of the run; slotOf gives −1 for an id that is none.
 */
export interface RunTexts {
  readonly size: number;
  slotOf(id: string): number;
  has(slot: number): boolean;
  /** Sent to synthesis: a metric event, or a dead letter without outputs, settles it. */
  isConverted(slot: number): boolean;
  /** The ids of some slots (for a message that names texts). */
  namesOf(slots: readonly number[]): Promise<string[]>;
}

/** Dead letters of a run's texts named in the summary: the first ones to arrive. */
const NAMED_DEAD_LETTERS = 20;

/**
 * A run's outcome counted by text slot: a bit per text for each thing known of it (converted, raw, dead-lettered,
 * without outputs, its synthesis event seen, its output and mixed record seen) and running counts, so that each
 * check of `pipeline run`'s wait is O(1) and memory is about one byte a text. Outputs, mixed records and metric
 * events whose ids are not texts of the run (evaluation records; general instructions, by mix index) are kept apart;
 * their number does not grow with the run's texts. The mixed records themselves go to the spool, if any.
 */
export class RunTally {
  accounted = 0;
  augmented = 0;
  raw = 0;
  deadLettered = 0;
  /** Converted texts settled: their synthesis metric event seen, or dead-lettered without outputs. */
  settled = 0;
  /** Outputs (by id) with something to train on, converted ones, and their pairs. */
  domainTexts = 0;
  outputTexts = 0;
  pairs = 0;
  mixedDomain = 0;
  readonly mix = { records: 0, augmented: 0, raw: 0, general: 0, domainTokens: 0, generalTokens: 0 };
  synthesisEvents = 0;
  evaluationEvents = 0;
  /** The judge stage's verdicts seen, and of those read, how many relevant and accurate. */
  judgementEvents = 0;
  readonly judge = { judged: 0, relevant: 0, accurate: 0 };
  /** Per round, the pairs the judge stage draws from (texts sampled by id). */
  private readonly judgeable = new Map<number, number>();
  /** Per round, the verdicts seen (distinct ids). */
  private readonly judgedByRound = new Map<number, number>();
  /** The first dead letters of the run's texts (updated when one is dead-lettered again), for the summary. */
  readonly namedDeadLetters: DeadLetter[] = [];
  /** Dead letters of records that are not texts of the run (evaluation records), by id. */
  readonly otherDeadLetters = new Map<string, DeadLetter>();

  private readonly convertedBits = new Bits();
  private readonly rawBits = new Bits();
  private readonly deadBits = new Bits();
  private readonly noOutputBits = new Bits();
  private readonly synthesisBits = new Bits();
  private readonly accountedBits = new Bits();
  private readonly outputBits = new Bits();
  private readonly mixedBits = new Bits();
  private readonly named = new Map<number, number>();
  private readonly otherOutputs = new Set<string>();
  private readonly otherMetrics = new Map<string, string>();
  /** Mixed records by id, where their ids are not slots: other domain ids, and general ones that break the usual form. */
  private readonly otherMixed = new Map<string, number>();
  /** General mixed records ("general/<cursor>/<mixIndex>") by mix index: cursor + 1, and spool entry + 1. */
  private readonly generalCursor = new NumberColumn((n) => new Int32Array(n));
  private readonly generalEntry = new NumberColumn((n) => new Int32Array(n));
  /** Each text's mixed record's spool entry + 1 (only with a spool). */
  private readonly entryOfSlot: Int32Array | undefined;

  constructor(
    private readonly runId: string,
    readonly texts: RunTexts,
    private readonly spool?: MixedSpool,
  ) {
    this.entryOfSlot = spool ? new Int32Array(texts.size) : undefined;
  }

  /** Up to `limit` texts of the run not yet accounted for, by slot, in input order. */
  unaccounted(limit = 10): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.texts.size && out.length < limit; s++) if (this.texts.has(s) && !this.accountedBits.get(s)) out.push(s);
    return out;
  }

  hasDeadLetter(id: string, ofText: boolean): boolean {
    if (!ofText) return this.otherDeadLetters.has(id);
    const s = this.texts.slotOf(id);
    return s >= 0 && this.deadBits.get(s);
  }

  private account(s: number): void {
    if (this.accountedBits.set(s)) this.accounted++;
  }

  output(o: DomainOutput): void {
    const s = this.texts.slotOf(o.id);
    if (s >= 0 ? !this.outputBits.set(s) : this.otherOutputs.has(o.id)) return;
    if (s < 0) this.otherOutputs.add(o.id);
    if (!o.empty) this.domainTexts++;
    if (o.converted) {
      this.outputTexts++;
      this.pairs += o.pairs;
    }
    for (const id of o.textIds) {
      const t = this.texts.slotOf(id);
      if (t < 0) continue;
      if (o.converted ? this.convertedBits.set(t) : this.rawBits.set(t)) {
        if (o.converted) this.augmented++;
        else this.raw++;
      }
      this.account(t);
    }
  }

  async mixed(x: MixedTextRecord): Promise<void> {
    const entry = this.spool ? (await this.spool.add(x)) + 1 : 1;
    const earlier = x.source === 'general' ? this.general(x, entry) : this.domain(x, entry);
    if (earlier === 0) {
      this.mix.records++;
      this.mix[x.source]++;
      if (x.source === 'general') this.mix.generalTokens += x.tokens;
      else this.mix.domainTokens += x.tokens;
    } else if (this.spool) this.spool.replaced(earlier - 1);
    if (x.source !== 'general') this.output({ id: x.id, converted: x.source === 'augmented', textIds: x.textIds, pairs: x.pairs, empty: false });
  }

  /** A domain mixed record: the earlier entry + 1 with its id, or 0 when it is the first. */
  private domain(x: MixedTextRecord, entry: number): number {
    const s = this.texts.slotOf(x.id);
    if (s < 0) return this.other(x.id, entry);
    const first = this.mixedBits.set(s);
    if (first) this.mixedDomain++;
    const earlier = first ? 0 : (this.entryOfSlot?.[s] ?? 1);
    if (this.entryOfSlot) this.entryOfSlot[s] = entry;
    return earlier;
  }

  /** A general mixed record, by the cursor and mix index its id holds. */
  private general(x: MixedTextRecord, entry: number): number {
    const m = /^general\/(\d+)\/(\d+)$/.exec(x.id);
    const at = m ? Number(m[2]) : -1;
    if (!m || at > 0x7fffffff) return this.other(x.id, entry);
    const cursor = Number(m[1]) + 1;
    const known = at < this.generalCursor.length ? this.generalCursor.at(at) : 0;
    if (known !== 0 && known !== cursor) return this.other(x.id, entry);
    this.generalCursor.put(at, cursor);
    const earlier = known === 0 ? 0 : this.generalEntry.at(at);
    this.generalEntry.put(at, entry);
    return earlier;
  }

  private other(id: string, entry: number): number {
    const earlier = this.otherMixed.get(id) ?? 0;
    this.otherMixed.set(id, entry);
    if (earlier === 0) this.mixedDomain += id.startsWith('general/') ? 0 : 1;
    return earlier;
  }

  metric(e: MetricEventRecord): void {
    const s = e.kind === 'synthesis' && e.id === `synthesis/${this.runId}/${e.recordId}` ? this.texts.slotOf(e.recordId) : -1;
    if (s >= 0) {
      if (!this.synthesisBits.set(s)) return;
      this.synthesisEvents++;
      this.countJudgeable(e);
      if (!this.noOutputBits.get(s)) this.settleOnce(s);
      return;
    }
    if (this.otherMetrics.has(e.id)) return;
    this.otherMetrics.set(e.id, e.kind);
    if (e.kind === 'synthesis') {
      this.synthesisEvents++;
      this.countJudgeable(e);
    } else if (e.kind === 'judgement') {
      this.judgementEvents++;
      this.judgedByRound.set(e.round, (this.judgedByRound.get(e.round) ?? 0) + 1);
      if (e.judgement?.judged) {
        this.judge.judged++;
        if (e.judgement.relevant) this.judge.relevant++;
        if (e.judgement.accurate) this.judge.accurate++;
      }
    } else this.evaluationEvents++;
  }

  private countJudgeable(e: MetricEventRecord): void {
    const n = judgeablePairs(e);
    if (n > 0) this.judgeable.set(e.round, (this.judgeable.get(e.round) ?? 0) + n);
  }

  /** The verdicts the judge stage gives this run at least: per round, its judgeable pairs up to the cap. */
  expectedJudgements(perRound: number): number {
    let n = 0;
    for (const pairs of this.judgeable.values()) n += Math.min(perRound, pairs);
    return n;
  }

  /**
   * Whether every round has its verdicts: as many as its judgeable pairs up to the cap (a round may have more, where
   * a failed judge gave its place to another pair; one round's extra never stands in for another's missing).
   */
  judgementsComplete(perRound: number): boolean {
    for (const [round, pairs] of this.judgeable) if ((this.judgedByRound.get(round) ?? 0) < Math.min(perRound, pairs)) return false;
    return true;
  }

  private settleOnce(s: number): void {
    if (this.texts.isConverted(s)) this.settled++;
  }

  deadLetter(id: string, stage: string, reason: string, emitted: boolean, notAText: boolean): void {
    const s = notAText ? -1 : this.texts.slotOf(id);
    if (s < 0) {
      // As the map of the monitor without texts keeps them.
      const withOutputs = emitted && this.otherDeadLetters.get(id)?.withOutputs !== false;
      this.otherDeadLetters.set(id, { id, stage, reason, withOutputs });
      return;
    }
    if (this.deadBits.set(s)) {
      this.deadLettered++;
      this.account(s);
    }
    // A text dead-lettered twice (by two stages, or again after a restart) has no metric coming if either says so.
    if (!emitted && this.noOutputBits.set(s) && !this.synthesisBits.get(s)) this.settleOnce(s);
    const d: DeadLetter = { id, stage, reason, withOutputs: !this.noOutputBits.get(s) };
    const at = this.named.get(s);
    if (at !== undefined) this.namedDeadLetters[at] = d;
    else if (this.namedDeadLetters.length < NAMED_DEAD_LETTERS) this.named.set(s, this.namedDeadLetters.push(d) - 1);
  }
}
