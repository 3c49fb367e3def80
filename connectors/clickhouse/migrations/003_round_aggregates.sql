-- Per run and round: the aggregates the dashboard and `ipt pipeline run` report.
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
  sum(completion_tokens) AS completion_tokens_total
FROM synthesis_metrics FINAL
GROUP BY run_id, round;
