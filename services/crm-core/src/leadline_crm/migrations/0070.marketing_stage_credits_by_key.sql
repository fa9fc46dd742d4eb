-- The funnel by source or campaign (issue 13) reads a kept lookback's credited stage moves per key: an index in
-- that order holding every column it reads lets PostgreSQL read them from the index alone, already grouped by key,
-- where it read each row from the table and sorted them all by key first (the benchmark's funnel by campaign over
-- 180 days, 90,000 rows, spilled that sort to disk: 157 ms p50 at 10M touchpoints). The index on (lookback, dim,
-- at) stays for short ranges. The days since the stage before become float8, the type percentile_cont takes: the
-- medians cast each numeric row by row (46 -> 34 ms over those 90,000 rows); the values the medians see are the
-- same, the numeric cast to float8 once when the row is written instead of at every read.
-- depends: 0069.marketing_weekly
ALTER TABLE marketing_stage_credits ALTER COLUMN days TYPE float8;
CREATE INDEX marketing_stage_credits_key ON marketing_stage_credits (lookback, dim, key, at)
    INCLUDE (stage, days, w_first, w_last, w_linear, w_position);
