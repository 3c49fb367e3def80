-- The built-in trainer's metrics, one row per logged optimizer step (rank 0 writes them). A resumed job logs the
-- steps after its checkpoint again: ReplacingMergeTree on (run, job, step) keeps the latest (queries read with FINAL).
-- held_out_loss is NULL on steps without an evaluation; mfu is NULL where the accelerator's peak is unknown (CPU).
CREATE TABLE IF NOT EXISTS trainer_steps (
  run_id String,
  job String,
  step UInt64,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  loss Float64,
  held_out_loss Nullable(Float64),
  lr Float64,
  grad_norm Float64,
  tokens_per_second Float64,
  mfu Nullable(Float64),
  ranks UInt32,
  tokens UInt64
) ENGINE = ReplacingMergeTree(time_ms) ORDER BY (run_id, job, step);
