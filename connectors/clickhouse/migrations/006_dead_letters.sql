-- Dead-lettered records, read from the stages' dead-letter topics by `ipt serve` for the dashboard: one row per
-- record, replaced on where it sits in its topic, so a record read twice (a restarted server) is one row.
CREATE TABLE IF NOT EXISTS dead_letters (
  dlq_topic String,
  dlq_partition UInt32,
  dlq_offset UInt64,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  run_id String,
  stage String,
  failure String,
  reason String,
  record_key String,
  source_topic String
) ENGINE = ReplacingMergeTree ORDER BY (dlq_topic, dlq_partition, dlq_offset);
