-- The dashboard's sample browser: the parsed pairs of sampled synthesis texts (round feedback samples each round's
-- first texts and one in sixteen after, by id), a row per pair with the start of its text's context. Replaced on id
-- (the metric event's id and the pair's index): a replayed text's pairs replace those at the same index, never add (a
-- replay that parses fewer pairs leaves the earlier ones above them).
CREATE TABLE IF NOT EXISTS pair_samples (
  id String,
  run_id String,
  round UInt16,
  record_id String,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  few_shot UInt8,
  pair_index UInt16,
  kind String,
  question String,
  answer String,
  context String,
  context_chars UInt64,
  version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, id);
