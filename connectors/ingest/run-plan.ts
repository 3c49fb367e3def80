import { chooseConverted, convertRank, PRESETS, validateRun, type RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';

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
  const fraction = settings.convertFraction ?? PRESETS[settings.preset].convertFraction;
  const convert = chooseConverted(texts.map((t) => t.id), fraction, settings.seed);
  const run = boundedRun(settings, texts.length, convert.filter(Boolean).length, now);
  let seq = 0;
  const records = texts.map((t, i): RawTextRecord => rawTextRecord(run, t, convert[i]! ? seq++ : -1, now));
  return { run, records };
}

/** A bounded run's configuration from its settings and counts: what planRun derives, for a run planned from a file's counts. */
export function boundedRun(settings: RunSettings, ingested: number, converted: number, now = Date.now()): RunConfig {
  const preset = PRESETS[settings.preset];
  const rounds = settings.rounds ?? preset.rounds;
  return validateRun({
    ...settings,
    createdAt: now,
    rounds,
    convertedTexts: converted,
    roundSize: Math.max(1, Math.ceil(converted / rounds)),
    ingested,
    convertFraction: settings.convertFraction ?? preset.convertFraction,
    generalWeight: settings.generalWeight ?? preset.generalWeight,
    generalOnExhausted: settings.generalOnExhausted ?? 'leave',
    startRound: 0,
    replayOf: null,
  });
}

/** A bounded run's raw-text record: `seq` is the text's place among the converted ones, −1 for one kept raw. */
export function rawTextRecord(run: Pick<RunConfig, 'runId' | 'roundSize'>, t: InputText, seq: number, now: number): RawTextRecord {
  const base = { id: t.id, runId: run.runId, text: t.text, source: t.source, ingestedAt: now };
  if (seq < 0) return { ...base, seq: -1, round: 0, convert: false };
  return { ...base, seq, round: Math.floor(seq / run.roundSize), convert: true };
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
