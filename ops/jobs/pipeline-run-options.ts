import type { RunSettings } from '../../connectors/ingest/run-plan.ts';
import type { Logger } from '../../processors/runtime/logger.ts';
import type { PipelineOptions } from '../pipeline/start-pipeline.ts';

export interface PipelineRunOptions {
  input: string;
  settings: Omit<RunSettings, 'runId'> & { runId?: string };
  general?: string;
  evaluation?: string;
  /** Write the run's mixed stream, in mix order, to this JSONL or Parquet file. */
  output?: string;
  pipeline: Omit<PipelineOptions, 'logger'>;
  /** false when `ipt pipeline up` already runs the stages elsewhere. */
  startStages: boolean;
  timeoutMs: number;
  log: (line: string) => void;
  logger: Logger;
}
