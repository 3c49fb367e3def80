-- Consumer lag per stage over time, sampled by the ops server.
CREATE TABLE IF NOT EXISTS consumer_lag (
  time_ms UInt64,
  time DateTime DEFAULT toDateTime(intDiv(time_ms, 1000)),
  stage String,
  topic String,
  lag UInt64
) ENGINE = MergeTree ORDER BY (stage, time_ms);
