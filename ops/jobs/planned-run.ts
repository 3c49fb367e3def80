import type { Reject } from '../../connectors/files/text-file-scan.ts';
import { Bits } from '../../connectors/files/compact-ids.ts';
import type { InputText } from '../../connectors/ingest/run-plan.ts';
import type { PipelineWriter } from '../../connectors/ingest/pipeline-writer.ts';
import type { EvaluationRecord, RawTextRecord, RoundCollectionRecord } from '../../processors/pipeline/records.ts';
import type { RunConfig } from '../../processors/pipeline/run-config.ts';
import type { RunTexts } from './run-tally.ts';

/** What one run puts into the pipeline, and what it expects out. */
export interface RunInput {
  run: RunConfig;
  records: RawTextRecord[];
  /** Previous-round collections to seed the round pool with (a run that starts at a later round). */
  pool: RoundCollectionRecord[];
  /** Raw-text ids that must each end converted, raw or dead-lettered. */
  expected: Set<string>;
  general?: InputText[];
  evaluations: EvaluationRecord[];
  rejects: { line: number; reason: string }[];
}

/** A run ready to execute, from records in memory (RunInput) or streamed from a file (TextFilePlan). */
export interface PlannedRun {
  run: RunConfig;
  texts: RunTexts;
  /** Texts that must each be accounted for, and the records written (the same, but for a run seeded with collections). */
  expected: number;
  records: number;
  /** Texts sent to synthesis: each has a metric event, unless dead-lettered before its result existed. */
  converted: number;
  writeTexts: (writer: PipelineWriter) => Promise<void>;
  writeGeneral?: (writer: PipelineWriter) => Promise<void>;
  pool: RoundCollectionRecord[];
  evaluations: EvaluationRecord[];
  rejected: number;
  rejects: Reject[];
}

/** A RunInput's texts by slot, in the order of its expected ids. */
export class ListedTexts implements RunTexts {
  private readonly ids: string[];
  private readonly slots: Map<string, number>;
  private readonly convert = new Bits();

  constructor(expected: Set<string>, records: readonly RawTextRecord[]) {
    this.ids = [...expected];
    this.slots = new Map(this.ids.map((id, i) => [id, i]));
    for (const r of records) if (r.convert && this.slots.has(r.id)) this.convert.set(this.slots.get(r.id)!);
  }
  get size(): number {
    return this.ids.length;
  }
  slotOf(id: string): number {
    return this.slots.get(id) ?? -1;
  }
  has(): boolean {
    return true;
  }
  isConverted(slot: number): boolean {
    return this.convert.get(slot);
  }
  async namesOf(slots: readonly number[]): Promise<string[]> {
    return slots.map((s) => this.ids[s]!);
  }
}
