import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { runOfKey, stageGroup, STAGES, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { AugmentedTextRecord, MetricEventBatchRecord, MetricEventRecord, MixedTextRecord } from '../../processors/pipeline/records.ts';
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

/**
 * Follows one run through the pipeline's output topics: which raw texts came out converted or raw (from the augmented
 * texts, or the lineage of the mixed ones), which were dead-lettered (and why), the mixed stream and the metric
 * events. Everything is kept by id, so duplicates from a restarted at-least-once stage count once. Given the run's
 * texts (RunTexts), it counts them in a RunTally of bits and counters instead, and the maps below stay empty: memory
 * then does not grow with the run beyond a few bits a text (`pipeline run`); without, it keeps every record (the
 * HTTP and test callers, whose runs are small).
 */
export class RunMonitor {
  /** By id, whichever topic told of it first (staged: augmented then mixed; fused: mixed, or augmented for an empty text the mix leaves out). */
  readonly outputs = new Map<string, DomainOutput>();
  readonly convertedIds = new Set<string>();
  readonly rawIds = new Set<string>();
  readonly deadLetters = new Map<string, DeadLetter>();
  readonly mixed = new Map<string, MixedTextRecord>();
  readonly metrics = new Map<string, MetricEventRecord>();
  /** The counts, when the run's texts were given. */
  readonly tally: RunTally | undefined;
  private consumer: Consumer | undefined;
  private listeners: (() => void)[] = [];

  constructor(
    private readonly kafka: Kafka,
    private readonly serde: AvroSerde,
    private readonly topics: PipelineTopics,
    readonly runId: string,
    texts?: RunTexts,
    /** Where the run's mixed records go as they arrive (the --output file), when counting by RunTexts. */
    spool?: MixedSpool,
  ) {
    this.tally = texts ? new RunTally(runId, texts, spool) : undefined;
  }

  async start(): Promise<void> {
    const t = this.topics;
    const schemas = new Map([
      [t.augmented, loadSchema('augmented-text')],
      [t.mixed, loadSchema('mixed-text')],
      [t.metrics, loadSchema('metric-event-batch')],
    ]);
    const dlqs = new Set(STAGES.map((s) => `${stageGroup(t, s)}.dlq`));
    // Evaluation records are not texts of the run: their dead letters are kept by id, apart from the texts'.
    const evaluationDlq = `${stageGroup(t, 'evaluation')}.dlq`;
    const tally = this.tally;
    this.consumer = this.kafka.consumer({ groupId: `${t.prefix}.monitor.${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: 500 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...schemas.keys(), ...dlqs], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const schema = schemas.get(batch.topic);
        if (schema) await this.serde.prefetch(batch.messages.map((m) => m.value));
        for (const m of batch.messages) {
          const key = m.key?.toString();
          if (runOfKey(key) !== this.runId) continue;
          if (!schema) {
            const h = (name: string) => m.headers?.[name]?.toString() ?? '';
            const id = key!.slice(this.runId.length + 1);
            if (tally) {
              tally.deadLetter(id, h(DLQ_HEADERS.processor), h(DLQ_HEADERS.reason), h(DLQ_HEADERS.outputs) === 'emitted', batch.topic === evaluationDlq);
              continue;
            }
            // A text dead-lettered twice (by two stages, or again after a restart) has no metric coming if either says so.
            const withOutputs = h(DLQ_HEADERS.outputs) === 'emitted' && this.deadLetters.get(id)?.withOutputs !== false;
            this.deadLetters.set(id, { id, stage: h(DLQ_HEADERS.processor), reason: h(DLQ_HEADERS.reason), withOutputs });
            continue;
          }
          const v = this.serde.decode(m.value, schema);
          if (batch.topic === t.augmented) {
            const a = v as AugmentedTextRecord;
            const o = { id: a.id, converted: a.converted, textIds: a.textIds, pairs: a.pairs, empty: a.text === '' };
            if (tally) tally.output(o);
            else this.output(o);
          } else if (batch.topic === t.mixed) {
            const x = v as MixedTextRecord;
            if (tally) await tally.mixed(x);
            else {
              this.mixed.set(x.id, x);
              if (x.source !== 'general') this.output({ id: x.id, converted: x.source === 'augmented', textIds: x.textIds, pairs: x.pairs, empty: false });
            }
          } else {
            for (const e of (v as MetricEventBatchRecord).events) {
              if (tally) tally.metric(e);
              else this.metrics.set(e.id, e);
            }
          }
        }
        for (const l of this.listeners) l();
      },
    });
  }

  private output(o: DomainOutput): void {
    if (this.outputs.has(o.id)) return;
    this.outputs.set(o.id, o);
    for (const id of o.textIds) (o.converted ? this.convertedIds : this.rawIds).add(id);
  }

  /** Of the expected texts, those accounted for: converted, kept raw, or dead-lettered (each id once). */
  accounted(expected: ReadonlySet<string>): number {
    let n = 0;
    for (const id of expected) if (this.convertedIds.has(id) || this.rawIds.has(id) || this.deadLetters.has(id)) n++;
    return n;
  }

  unaccounted(expected: ReadonlySet<string>, limit = 10): string[] {
    const out: string[] = [];
    for (const id of expected) {
      if (out.length >= limit) break;
      if (!this.convertedIds.has(id) && !this.rawIds.has(id) && !this.deadLetters.has(id)) out.push(id);
    }
    return out;
  }

  /** Domain texts (converted or raw, non-empty) that reached the mixed stream. */
  mixedDomain(): number {
    let n = 0;
    for (const x of this.mixed.values()) if (x.source !== 'general') n++;
    return n;
  }

  /** Domain texts known so far that have something to train on (an empty one is left out of the mix). */
  domainTexts(): number {
    let n = 0;
    for (const o of this.outputs.values()) if (!o.empty) n++;
    return n;
  }

  /** Resolves when cond() holds, re-checking after every batch read (and every second); rejects when cond() throws. */
  until(cond: () => boolean, timeoutMs: number, what: () => string | Promise<string>): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let holds: boolean;
        try {
          holds = cond();
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (holds) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        // What is still missing may have to be read back (the ids of texts not yet accounted for).
        Promise.resolve()
          .then(what)
          .then(
            (w) => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${w}`)),
            (err: Error) => reject(new Error(`timed out after ${timeoutMs} ms (and what is missing could not be named: ${err.message})`)),
          );
      }, timeoutMs);
      const tick = setInterval(check, 1000);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(tick);
        this.listeners = this.listeners.filter((l) => l !== check);
      };
      this.listeners.push(check);
      check();
    });
  }

  /** Disconnects (once): a batch being read is finished first, so what the tally and spool hold is settled after. */
  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    await c?.disconnect();
  }
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
      if (!this.noOutputBits.get(s)) this.settleOnce(s);
      return;
    }
    if (this.otherMetrics.has(e.id)) return;
    this.otherMetrics.set(e.id, e.kind);
    if (e.kind === 'synthesis') this.synthesisEvents++;
    else this.evaluationEvents++;
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
