import type { Kafka } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { DLQ_HEADERS } from '../../processors/runtime/dead-letter.ts';
import { TopicReader } from '../../processors/runtime/topic-reader.ts';
import { runOfKey, stageGroup, STAGES, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { AugmentedTextRecord, MetricEventBatchRecord, MetricEventRecord, MixedTextRecord } from '../../processors/pipeline/records.ts';
import type { MixedSpool } from '../../connectors/files/mixed-spool.ts';
import { RunTally, type DeadLetter, type DomainOutput, type RunTexts } from './run-tally.ts';

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
  private reader: TopicReader | undefined;
  /** Why the monitor stopped following the run (its consumer crashed past its rebuilds): a wait fails with it. */
  failure: Error | undefined;
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
    // A consumer that crashes for good is rebuilt and reads the topics again; the tally and the maps count each id once.
    this.reader = new TopicReader(this.kafka, {
      group: `${t.prefix}.monitor`,
      topics: [...schemas.keys(), ...dlqs],
      onFailure: (err) => {
        this.failure = err;
        for (const l of this.listeners) l();
      },
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
    await this.reader.start();
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
          if (this.failure) throw this.failure;
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
    const r = this.reader;
    this.reader = undefined;
    await r?.stop();
  }
}
