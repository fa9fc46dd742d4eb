-- The marketing rollups that every batch adds to the same few rows (today's visitors per source, today's clicks
-- per ad, this week's leads and sales) are written at commit, not where the trigger runs. Ingestion writes a
-- batch as two shards in two transactions at once (ingest/consumer.py); each shard's triggers upserted those rows
-- early in its transaction and held their locks to its end, so the other shard waited for the whole transaction
-- (crm_bench's loop: two writers no faster than one, three slower). Now:
-- * the trigger functions of 0024, 0026, 0023 and 0069 that upserted marketing_visitors_daily,
--   marketing_clicks_daily and marketing_weekly append their deltas to a pending table of the same columns instead
--   (no unique key: two transactions never wait on each other's pending rows), and mark the transaction;
-- * a deferred constraint trigger on each pending table runs marketing_flush_pending() at commit: it takes the
--   transaction's own pending rows (another's are invisible to it) and upserts their sums in key order, so the
--   rows stay locked only from the flush to the commit. Once per transaction (the mark), however many rows fired it.
-- Every committed state is the one the old triggers left: the rows, the zero rows removed, the tests' raw
-- computations. A statement reading these rollups inside the writing transaction, before its commit, would miss
-- its own deltas; nothing does (the reports read in their own transactions).
-- depends: 0071.marketing_recredit_queue

CREATE TABLE marketing_visitors_daily_pending (LIKE marketing_visitors_daily);
CREATE TABLE marketing_clicks_daily_pending (LIKE marketing_clicks_daily);
CREATE TABLE marketing_weekly_pending (LIKE marketing_weekly);

-- Marks this transaction as having pending deltas (read by the flush; local to the transaction).
CREATE FUNCTION marketing_pending_mark() RETURNS void LANGUAGE sql AS $$
SELECT set_config('leadline.marketing_pending', 'on', true);
$$;

CREATE FUNCTION marketing_flush_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('leadline.marketing_pending', true), '') <> 'on' THEN
        RETURN NULL;  -- flushed already by an earlier row's trigger of this transaction
    END IF;
    PERFORM set_config('leadline.marketing_pending', 'off', true);
    WITH d AS (DELETE FROM marketing_visitors_daily_pending RETURNING *)
    INSERT INTO marketing_visitors_daily AS v (day, source, campaign, visitors)
    SELECT day, source, campaign, sum(visitors) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, source, campaign) DO UPDATE SET visitors = v.visitors + EXCLUDED.visitors;
    DELETE FROM marketing_visitors_daily WHERE visitors = 0;
    WITH d AS (DELETE FROM marketing_clicks_daily_pending RETURNING *)
    INSERT INTO marketing_clicks_daily AS c (day, affiliate_id, ad_id, clicks, prospect_clicks)
    SELECT day, affiliate_id, ad_id, sum(clicks), sum(prospect_clicks) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, affiliate_id, ad_id) DO UPDATE
       SET clicks = c.clicks + EXCLUDED.clicks, prospect_clicks = c.prospect_clicks + EXCLUDED.prospect_clicks;
    DELETE FROM marketing_clicks_daily WHERE clicks = 0;
    WITH d AS (DELETE FROM marketing_weekly_pending RETURNING *)
    INSERT INTO marketing_weekly AS w (week, leads, purchases, revenue)
    SELECT week, sum(leads), sum(purchases), sum(revenue) FROM d GROUP BY 1
    HAVING sum(leads) <> 0 OR sum(purchases) <> 0 OR sum(revenue) <> 0 ORDER BY 1
    ON CONFLICT (week) DO UPDATE
       SET leads = w.leads + EXCLUDED.leads, purchases = w.purchases + EXCLUDED.purchases,
           revenue = w.revenue + EXCLUDED.revenue;
    DELETE FROM marketing_weekly WHERE leads = 0 AND purchases = 0;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER marketing_visitors_daily_flush AFTER INSERT ON marketing_visitors_daily_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION marketing_flush_pending();
CREATE CONSTRAINT TRIGGER marketing_clicks_daily_flush AFTER INSERT ON marketing_clicks_daily_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION marketing_flush_pending();
CREATE CONSTRAINT TRIGGER marketing_weekly_flush AFTER INSERT ON marketing_weekly_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION marketing_flush_pending();

-- 0024's function, its deltas pending (the zero rows go at the flush).
CREATE OR REPLACE FUNCTION marketing_visitors_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM marketing_pending_mark();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO marketing_visitors_daily_pending (day, source, campaign, visitors)
        SELECT (visited_at AT TIME ZONE 'UTC')::date, source, campaign, -count(*) FROM old_rows GROUP BY 1, 2, 3;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO marketing_visitors_daily_pending (day, source, campaign, visitors)
        SELECT (visited_at AT TIME ZONE 'UTC')::date, source, campaign, count(*) FROM new_rows GROUP BY 1, 2, 3;
        UPDATE marketing_stages AS s
           SET visited_at = n.visited_at, source = n.source, campaign = n.campaign, device = n.device
          FROM new_rows AS n
         WHERE s.person_id = n.person_id
           AND (s.visited_at, s.source, s.campaign, s.device)
               IS DISTINCT FROM (n.visited_at, n.source, n.campaign, n.device);
    ELSE
        UPDATE marketing_stages AS s SET visited_at = NULL, source = NULL, campaign = NULL, device = NULL
          FROM old_rows AS o WHERE s.person_id = o.person_id;
    END IF;
    RETURN NULL;
END $$;

-- 0026's function, its deltas pending.
CREATE OR REPLACE FUNCTION marketing_clicks_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM marketing_pending_mark();
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO marketing_clicks_daily_pending (day, affiliate_id, ad_id, clicks, prospect_clicks)
        SELECT (k.occurred_at AT TIME ZONE 'UTC')::date, k.affiliate_id, k.ad_id, -count(*),
               -count(*) FILTER (WHERE s.prospect_at IS NOT NULL)
          FROM old_rows AS k LEFT JOIN marketing_stages AS s ON s.person_id = k.person_id
         GROUP BY 1, 2, 3;
        PERFORM marketing_credit(array_agg(DISTINCT person_id)) FROM old_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO marketing_clicks_daily_pending (day, affiliate_id, ad_id, clicks, prospect_clicks)
        SELECT (k.occurred_at AT TIME ZONE 'UTC')::date, k.affiliate_id, k.ad_id, count(*),
               count(*) FILTER (WHERE s.prospect_at IS NOT NULL)
          FROM new_rows AS k LEFT JOIN marketing_stages AS s ON s.person_id = k.person_id
         GROUP BY 1, 2, 3;
        PERFORM marketing_credit(array_agg(DISTINCT person_id)) FROM new_rows;
    END IF;
    RETURN NULL;
END $$;

-- 0023's function, its deltas pending.
CREATE OR REPLACE FUNCTION marketing_prospect_clicks(persons uuid[], sign integer) RETURNS void LANGUAGE sql AS $$
SELECT marketing_pending_mark();
INSERT INTO marketing_clicks_daily_pending (day, affiliate_id, ad_id, clicks, prospect_clicks)
SELECT (occurred_at AT TIME ZONE 'UTC')::date, affiliate_id, ad_id, 0, sign * count(*)
  FROM marketing_clicks WHERE person_id = ANY(persons)
 GROUP BY 1, 2, 3;
$$;

-- 0069's function, its deltas pending (the sums and the zero rows at the flush).
CREATE OR REPLACE FUNCTION marketing_weekly_add(changes jsonb) RETURNS void LANGUAGE sql AS $$
SELECT marketing_pending_mark();
INSERT INTO marketing_weekly_pending (week, leads, purchases, revenue)
SELECT (c ->> 'week')::date, (c ->> 'leads')::bigint, (c ->> 'purchases')::bigint, (c ->> 'revenue')::numeric
  FROM jsonb_array_elements(changes) AS c;
$$;
