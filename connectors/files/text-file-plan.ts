import { boundedRun, rawTextRecord, type InputText, type RunSettings } from '../ingest/run-plan.ts';
import { convertRank, PRESETS, type RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RawTextRecord } from '../../processors/pipeline/records.ts';
import { Bits } from './compact-ids.ts';
import { TextFileScan, type Reject } from './text-file-scan.ts';

/** Records per write while a file's texts stream into the raw topic: what the ingesting process holds at once. */
const BATCH_RECORDS = 2000;
const BATCH_BYTES = 4 << 20;

/**
 * A bounded run planned from a text file without holding its texts: one pass counts and checks them (TextFileScan),
 * the convert choice is made on the kept ranks, and a second pass streams the records in batches. The same run
 * configuration and records as planRun over the file's texts, in the same order. It is also the run's index of texts
 * for the run monitor: a slot per text, and which were sent to synthesis.
 */
export class TextFilePlan {
  private constructor(
    readonly run: RunConfig,
    private readonly scan: TextFileScan,
    /** Which slots are converted (sent to synthesis): a bit per text. */
    private readonly convert: Bits,
    readonly converted: number,
    private readonly now: number,
  ) {}

  /** Scans the file (rejects go to onReject as found) and plans the run on what it accepted. */
  static async create(path: string, settings: RunSettings, o: { limit?: number; from?: string; now?: number; weakFingerprints?: boolean; onReject: (r: Reject) => void }): Promise<TextFilePlan> {
    const now = o.now ?? Date.now();
    const fraction = settings.convertFraction ?? PRESETS[settings.preset].convertFraction;
    const scan = await TextFileScan.run(path, {
      limit: o.limit === undefined ? undefined : { bytes: o.limit, runId: settings.runId },
      rank: fraction < 1 ? (id) => convertRank(settings.seed, id) : undefined,
      from: o.from,
      weakFingerprints: o.weakFingerprints,
      onReject: o.onReject,
    });
    const convert = new Bits(scan.slots);
    const converted = chooseConverted(scan, fraction, convert);
    return new TextFilePlan(boundedRun(settings, scan.live, converted, now), scan, convert, converted, now);
  }

  get ingested(): number {
    return this.scan.live;
  }

  /** Slots of the index: every accepted line's, rejected or not (a rejected one is never a text of the run). */
  get size(): number {
    return this.scan.slots;
  }

  get rejected(): number {
    return this.scan.rejected;
  }

  slotOf(id: string): number {
    return this.scan.slotOf(id);
  }

  /** A text of the run (not a rejected line's slot). */
  has(slot: number): boolean {
    return !this.scan.dead.get(slot);
  }

  /** Sent to synthesis (so a metric event, or a dead letter without outputs, settles it). */
  isConverted(slot: number): boolean {
    return this.convert.get(slot);
  }

  namesOf(slots: readonly number[]): Promise<string[]> {
    return this.scan.idsOf(slots);
  }

  /** The run's raw-text records in input order, in batches of at most 2,000 records or 4 MiB. */
  async *batches(): AsyncGenerator<RawTextRecord[]> {
    let batch: RawTextRecord[] = [];
    let bytes = 0;
    let seq = 0;
    for await (const r of this.scan.records()) {
      if (this.scan.dead.get(r.slot)) continue;
      const t: InputText = { id: r.id, text: r.text, source: `${this.scan.path}:${r.line}` };
      batch.push(rawTextRecord(this.run, t, this.convert.get(r.slot) ? seq++ : -1, this.now));
      bytes += r.text.length;
      if (batch.length >= BATCH_RECORDS || bytes >= BATCH_BYTES) {
        yield batch;
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) yield batch;
  }
}

/**
 * chooseConverted on the kept ranks: exactly round(fraction · n) texts, those with the lowest rank, ties by input
 * order, marked in `convert`; returns how many. Sorting a copy of the ranks (8 bytes a text) finds the cut.
 */
function chooseConverted(scan: TextFileScan, fraction: number, convert: Bits): number {
  const live = (f: (slot: number) => void) => {
    for (let s = 0; s < scan.slots; s++) if (!scan.dead.get(s)) f(s);
  };
  if (fraction >= 1) {
    live((s) => convert.set(s));
    return scan.live;
  }
  const k = Math.round(fraction * scan.live);
  if (k === 0) return 0;
  const ranks = scan.ranks!;
  const sorted = new Float64Array(scan.live);
  let i = 0;
  live((s) => (sorted[i++] = ranks.at(s)));
  sorted.sort();
  const cut = sorted[k - 1]!;
  let below = 0;
  for (let j = 0; j < k; j++) if (sorted[j]! < cut) below++;
  let ties = k - below;
  live((s) => {
    const r = ranks.at(s);
    if (r < cut || (r === cut && ties-- > 0)) convert.set(s);
  });
  return k;
}
