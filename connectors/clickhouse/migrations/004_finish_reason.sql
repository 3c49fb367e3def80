-- Why each synthesis stopped, and whether its output was cut at max-new-tokens (finish reason `length`): the
-- dashboard's truncation rate. Rows stored before this migration read as '' and 0.
-- One statement (the migration is recorded once it has run; ADD COLUMN IF NOT EXISTS is newer than some servers).
ALTER TABLE synthesis_metrics ADD COLUMN finish_reason String DEFAULT '', ADD COLUMN truncated UInt8 DEFAULT 0;
DROP TABLE IF EXISTS round_aggregates;
CREATE VIEW IF NOT EXISTS round_aggregates AS
SELECT
  run_id,
  round,
  count() AS texts,
  sum(outcome = 'failed') AS failed,
  sum(outcome = 'skipped') AS skipped,
  sum(few_shot) AS few_shot_texts,
  sum(pairs) AS pairs_total,
  avg(pairs) AS pairs_per_text,
  avg(parse_ok) AS parse_success,
  sum(kind_free) AS free_form,
  sum(kind_mc) AS mc,
  sum(kind_cot) AS cot,
  sum(kind_mc_cot) AS mc_cot,
  if(sum(parsed_pieces) = 0, 0, 1 - sum(pairs) / sum(parsed_pieces)) AS duplicate_rate,
  avg(grounding) AS grounding_avg,
  avg(latency_ms) AS latency_ms_avg,
  sum(prompt_tokens) AS prompt_tokens_total,
  sum(completion_tokens) AS completion_tokens_total,
  sum(truncated) AS truncated_texts,
  avg(truncated) AS truncation_rate
FROM synthesis_metrics FINAL
GROUP BY run_id, round;
