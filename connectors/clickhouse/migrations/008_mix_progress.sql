-- The mixer's per-run token counts as it wrote them (its changelog, followed by `ipt serve`): the dashboard's mix
-- share over time. One row per run and mix index, so reading the changelog again replaces rows with themselves.
CREATE TABLE IF NOT EXISTS mix_progress (
  run_id String,
  mix_index UInt64,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  domain_tokens Float64,
  general_tokens Float64
) ENGINE = ReplacingMergeTree ORDER BY (run_id, mix_index);
