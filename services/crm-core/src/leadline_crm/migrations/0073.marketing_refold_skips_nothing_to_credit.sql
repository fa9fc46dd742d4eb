-- The fold of 0071 computes ad and e-mail credits only for the queued persons who have something to credit or
-- credits to take back: an ad click, an e-mail link click, or credit rows of that kind already. For anyone else
-- both computations delete nothing and insert nothing, yet each still probed its tables per person. A CSV import
-- of new leads queues every one of them: folding 20,000 such leads took 1.17 s, 1.03 s with this; most of what
-- is left is the funnel's stage credits, computed for every queued person as before (six rows per lead: a move
-- with no arrival is credited to the first visit's origin, for each kept lookback, by source and by campaign).
-- depends: 0072.marketing_hot_rows_at_commit

CREATE OR REPLACE FUNCTION marketing_refold(wait boolean) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lock_key bigint := hashtextextended(current_schema() || '.marketing_refold', 0);
    for_ads uuid[];
    for_email uuid[];
    for_stage uuid[];
    folded integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM marketing_recredit_queue) THEN
        RETURN 0;
    END IF;
    IF wait THEN
        PERFORM pg_advisory_xact_lock(lock_key);
    ELSIF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RETURN 0;
    END IF;
    WITH taken AS (DELETE FROM marketing_recredit_queue AS q RETURNING q.person_id, q.ads, q.email, q.stage)
    SELECT coalesce(array_agg(DISTINCT t.person_id ORDER BY t.person_id) FILTER (WHERE t.ads), '{}'),
           coalesce(array_agg(DISTINCT t.person_id ORDER BY t.person_id) FILTER (WHERE t.email), '{}'),
           coalesce(array_agg(DISTINCT t.person_id ORDER BY t.person_id) FILTER (WHERE t.stage), '{}')
      INTO for_ads, for_email, for_stage
      FROM taken AS t;
    folded := cardinality(ARRAY(SELECT unnest(for_ads) UNION SELECT unnest(for_email) UNION SELECT unnest(for_stage)));
    for_ads := ARRAY(SELECT p FROM unnest(for_ads) AS p
                      WHERE EXISTS (SELECT 1 FROM marketing_clicks AS k WHERE k.person_id = p)
                         OR EXISTS (SELECT 1 FROM marketing_credits AS c WHERE c.person_id = p));
    for_email := ARRAY(SELECT p FROM unnest(for_email) AS p
                        WHERE EXISTS (SELECT 1 FROM marketing_email_events AS e
                                       WHERE e.person_id = p AND e.type = 'link_click')
                           OR EXISTS (SELECT 1 FROM marketing_email_credits AS c WHERE c.person_id = p));
    IF cardinality(for_ads) > 0 THEN
        PERFORM marketing_credit_now(for_ads);
    END IF;
    IF cardinality(for_email) > 0 THEN
        PERFORM marketing_email_credit(for_email);
    END IF;
    IF cardinality(for_stage) > 0 THEN
        PERFORM marketing_stage_credit(for_stage);
    END IF;
    RETURN folded;
END $$;
