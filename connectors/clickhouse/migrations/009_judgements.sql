-- The LLM judge's verdicts (`ipt judge`, docs/method.md §7.4): one row per judged pair and judge model, replaced on
-- id, so a run judged again with the same model replaces its rows. judged = 0: the answer could not be read (error
-- says why) or the request failed; relevant and accurate count only where judged = 1.
CREATE TABLE IF NOT EXISTS judgements (
  id String,
  run_id String,
  round UInt16,
  record_id String,
  pair_index UInt16,
  judge_model String,
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  judged UInt8,
  relevant UInt8,
  accurate UInt8,
  category String,
  error String,
  question String,
  answer String
) ENGINE = ReplacingMergeTree(time_ms) ORDER BY (run_id, id);
