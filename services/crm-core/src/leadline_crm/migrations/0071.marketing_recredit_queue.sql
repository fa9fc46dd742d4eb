-- The e-mail and funnel credits are computed anew outside ingestion's transaction (the trust issue's ingestion
-- target: crm-core's loop fell from 23,311 to 10,277 events/s once 0063 and 0064 recomputed every touched
-- person's credits inside each batch; with the recomputation gone from the batch the write path measured 15,100
-- events/s against 11,800).
-- * marketing_recredit_queue: persons whose e-mail credits (0063) or stage credits (0064) are due anew, one row
--   per statement that changed them (appended only: two ingestion shards never wait on each other's rows here).
-- * marketing_recredit() (the statement trigger of 0063 and 0064 on marketing_email_events, marketing_stages,
--   purchases and marketing_arrivals) now queues the persons instead of computing their credits; so does a change
--   of analytics consent (0065), which still computes the ad credits at once.
-- * marketing_refold(wait): takes the whole queue and computes those persons' credits; one fold at a time per
--   schema (an advisory lock), so two folds never write the same person's rows from different snapshots. A queued
--   person changed again during a fold stays queued for the next. crm-core folds in the background every second
--   (marketing/recredit.py), and the reports that read these credits fold what is queued first (wait true), so they
--   still equal the raw computation at every read.
-- depends: 0070.marketing_stage_credits_by_key

CREATE TABLE marketing_recredit_queue (
    person_id  uuid NOT NULL,
    ads        boolean NOT NULL DEFAULT false,  -- the ad credits (0023) are due anew
    email      boolean NOT NULL DEFAULT false,  -- the e-mail credits are due anew
    stage      boolean NOT NULL DEFAULT false   -- the funnel's stage credits are due anew
);

-- The ad credits: every trigger of 0023 and 0026 that computed them (a click in, a stage move, a purchase) calls
-- marketing_credit, which now queues the persons; the fold computes them with the function as it was.
ALTER FUNCTION marketing_credit(uuid[]) RENAME TO marketing_credit_now;
CREATE FUNCTION marketing_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
INSERT INTO marketing_recredit_queue (person_id, ads)
SELECT DISTINCT p, true FROM unnest(persons) AS p WHERE p IS NOT NULL;
$$;

CREATE OR REPLACE FUNCTION marketing_recredit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    due_email boolean := TG_TABLE_NAME <> 'marketing_arrivals';  -- e-mail events, stage times, purchases
    due_stage boolean := TG_TABLE_NAME IN ('marketing_arrivals', 'marketing_stages');
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO marketing_recredit_queue (person_id, email, stage)
        SELECT DISTINCT person_id, due_email, due_stage FROM new_rows;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO marketing_recredit_queue (person_id, email, stage)
        SELECT DISTINCT person_id, due_email, due_stage FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_consent_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_recredit_queue (person_id, ads, email, stage) VALUES (NEW.person_id, true, true, true);
    RETURN NULL;
END $$;

-- Returns how many persons were credited anew. Without wait, a fold already running elsewhere is left to finish
-- the queue (0 returned); with it, the caller waits for that fold and then takes what is left.
CREATE FUNCTION marketing_refold(wait boolean) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lock_key bigint := hashtextextended(current_schema() || '.marketing_refold', 0);
    for_ads uuid[];
    for_email uuid[];
    for_stage uuid[];
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
    IF cardinality(for_ads) > 0 THEN
        PERFORM marketing_credit_now(for_ads);
    END IF;
    IF cardinality(for_email) > 0 THEN
        PERFORM marketing_email_credit(for_email);
    END IF;
    IF cardinality(for_stage) > 0 THEN
        PERFORM marketing_stage_credit(for_stage);
    END IF;
    RETURN cardinality(ARRAY(SELECT unnest(for_ads) UNION SELECT unnest(for_email) UNION SELECT unnest(for_stage)));
END $$;
