-- Per-record synthesis quality and evaluation F1. ReplacingMergeTree on the event id: a replayed event replaces
-- the row it repeats (queries read with FINAL), so counts never double.
CREATE TABLE IF NOT EXISTS synthesis_metrics (
  id String,
  run_id String,
  round UInt16,
  record_id String,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  outcome String,
  few_shot UInt8,
  pairs UInt32,
  parsed_pieces UInt32,
  parse_ok UInt8,
  kind_free UInt32,
  kind_mc UInt32,
  kind_cot UInt32,
  kind_mc_cot UInt32,
  text_chars UInt64,
  output_chars UInt64,
  question_chars UInt64,
  answer_chars UInt64,
  grounding Float64,
  latency_ms Float64,
  prompt_tokens UInt64,
  completion_tokens UInt64,
  version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, id);

CREATE TABLE IF NOT EXISTS evaluations (
  id String,
  run_id String,
  record_id String,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  dataset String,
  shots UInt16,
  seen UInt8,
  f1 Float64,
  exact_match Float64,
  response String,
  latency_ms Float64,
  version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, id);
