import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { AvroSerde } from '../../processors/runtime/serde.ts';
import { loadSchema } from '../../processors/runtime/schemas.ts';
import { chooseConverted, convertRank, placement, PRESETS, validateRun, type RunConfig } from '../../processors/pipeline/run-config.ts';
import { hashString } from '../../processors/pretrain-text/seeded-random.ts';
import { recordKey, type PipelineTopics } from '../../processors/pipeline/pipeline-topics.ts';
import type { EvaluationRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';

/** What a user chooses for a run: the rest of its configuration is derived (from the preset and the texts). */
export type RunSettings = Pick<RunConfig, 'runId' | 'preset' | 'seed' | 'model' | 'maxModelLen' | 'maxNewTokens' | 'lengthEstimate' | 'temperature'> &
  Partial<Pick<RunConfig, 'rounds' | 'convertFraction' | 'generalWeight' | 'generalOnExhausted'>>;

export interface InputText {
  id: string;
  text: string;
  source: string;
}

/** A bounded run's configuration and its raw-text records: which texts are converted, and each one's place in the rounds. */
export function planRun(settings: RunSettings, texts: readonly InputText[], now = Date.now()): { run: RunConfig; records: RawTextRecord[] } {
  const preset = PRESETS[settings.preset];
  const rounds = settings.rounds ?? preset.rounds;
  const fraction = settings.convertFraction ?? preset.convertFraction;
  const convert = chooseConverted(texts.map((t) => t.id), fraction, settings.seed);
  const converted = convert.filter(Boolean).length;
  const run = validateRun({
    ...settings,
    createdAt: now,
    rounds,
    convertedTexts: converted,
    roundSize: Math.max(1, Math.ceil(converted / rounds)),
    ingested: texts.length,
    convertFraction: fraction,
    generalWeight: settings.generalWeight ?? preset.generalWeight,
    generalOnExhausted: settings.generalOnExhausted ?? 'leave',
    startRound: 0,
    replayOf: null,
  });
  let seq = 0;
  const records = texts.map((t, i): RawTextRecord => {
    const base = { id: t.id, runId: run.runId, text: t.text, source: t.source, ingestedAt: now };
    if (!convert[i]) return { ...base, seq: -1, round: 0, convert: false };
    const s = seq++;
    return { ...base, seq: s, round: Math.floor(s / run.roundSize), convert: true };
  });
  return { run, records };
}

/** An open run (texts arriving over HTTP): one round; the preset's fraction decides per text, by its id's rank. */
export function openRun(settings: RunSettings, now = Date.now()): RunConfig {
  const preset = PRESETS[settings.preset];
  return validateRun({
    ...settings,
    createdAt: now,
    rounds: settings.rounds ?? 1,
    convertedTexts: null,
    roundSize: 1,
    ingested: 0,
    convertFraction: settings.convertFraction ?? preset.convertFraction,
    generalWeight: settings.generalWeight ?? preset.generalWeight,
    generalOnExhausted: settings.generalOnExhausted ?? 'leave',
    startRound: 0,
    replayOf: null,
  });
}

export function openRunRecord(run: RunConfig, t: InputText, now = Date.now()): RawTextRecord {
  const convert = convertRank(run.seed, t.id) < run.convertFraction;
  return { id: t.id, runId: run.runId, text: t.text, source: t.source, ingestedAt: now, seq: convert ? 0 : -1, round: 0, convert };
}

/** Writes records of one schema to the pipeline's topics, keyed "<run>/<id>", every send acknowledged by all replicas. */
export class PipelineWriter {
  private producer: Producer | undefined;
  private rawPartitions = 1;

  constructor(
    private readonly kafka: Kafka,
    private readonly serde: AvroSerde,
    readonly topics: PipelineTopics,
  ) {}

  async start(): Promise<void> {
    const t = this.topics;
    await this.serde.registerValueSchema(t.runs, 'run-config');
    await this.serde.registerValueSchema(t.raw, 'raw-text');
    await this.serde.registerValueSchema(t.general, 'raw-text');
    await this.serde.registerValueSchema(t.evalRecords, 'evaluation-record');
    await this.serde.registerValueSchema(t.pool, 'round-collection');
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [t.raw] });
      this.rawPartitions = Math.max(1, meta.topics[0]?.partitions.length ?? 1);
    } finally {
      await admin.disconnect();
    }
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  async stop(): Promise<void> {
    await this.producer?.disconnect();
  }

  private async send(topic: string, schema: string, items: readonly { key: string; value: unknown; partition?: number }[], chunk = 1000): Promise<void> {
    if (!this.producer) throw new Error('PipelineWriter.start() was not called');
    const s = loadSchema(schema);
    for (let i = 0; i < items.length; i += chunk) {
      const messages = items.slice(i, i + chunk).map((m) => ({ key: m.key, value: this.serde.encode(topic, s, m.value), partition: m.partition }));
      await this.producer.send({ topic, acks: -1, messages });
    }
  }

  writeRun(run: RunConfig): Promise<void> {
    return this.send(this.topics.runs, 'run-config', [{ key: run.runId, value: run }]);
  }

  /**
   * Raw texts in the order given. A multi-round run's converted texts are placed by position (every round's text i
   * in one partition, in round order), so the fused stage hands collections between rounds within a partition; the
   * rest go by key.
   */
  writeTexts(records: readonly RawTextRecord[], run: Pick<RunConfig, 'runId' | 'rounds' | 'roundSize'>): Promise<void> {
    const base = hashString(run.runId);
    const partitionOf = (r: RawTextRecord) => (run.rounds > 1 && r.convert && r.seq >= 0 ? (base + placement(run, r.seq).position) % this.rawPartitions : undefined);
    return this.send(this.topics.raw, 'raw-text', records.map((r) => ({ key: recordKey(r.runId, r.id), value: r, partition: partitionOf(r) })));
  }

  writeGeneral(runId: string, texts: readonly InputText[]): Promise<void> {
    const now = Date.now();
    return this.send(
      this.topics.general,
      'raw-text',
      texts.map((t) => ({ key: recordKey(runId, t.id), value: { id: t.id, runId, text: t.text, source: t.source, ingestedAt: now, seq: -1, round: 0, convert: false } })),
    );
  }

  writePool(collections: readonly RoundCollectionRecord[]): Promise<void> {
    return this.send(this.topics.pool, 'round-collection', collections.map((c) => ({ key: recordKey(c.runId, `${c.round}/${c.position}`), value: c })));
  }

  writeEvaluations(records: readonly EvaluationRecord[]): Promise<void> {
    return this.send(this.topics.evalRecords, 'evaluation-record', records.map((r) => ({ key: recordKey(r.runId, r.id), value: r })));
  }
}
