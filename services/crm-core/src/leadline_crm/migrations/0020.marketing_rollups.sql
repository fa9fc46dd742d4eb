-- Marketing rollups (issue 13): what the reports read instead of scanning touchpoints. None holds personal data
-- (ids, times, affiliate/ad/campaign names), so an erasure leaves them as they are, as it leaves the raw rows'
-- affiliate and campaign.
-- * marketing_clicks: one row per ad click of a person (not a bot's), written by ingestion per batch
--   (marketing/rollups.py fold). Attribution reads a converting person's clicks here.
-- * marketing_visitors: each visitor's first touch that was not a bot's (time, event, source, campaign), upserted
--   by ingestion once per batch; marketing_visitors_daily counts them per day, source and campaign, kept by
--   statement triggers on marketing_visitors (transition tables: one aggregate per batch).
-- * marketing_stages: when a person first became a lead, prospect and customer, kept by a statement trigger on
--   stage_transitions (stage moves are rare next to events).
-- * A merge folds the merged persons' rows into the survivor (the earliest wins), by a trigger on person_merges,
--   which every merge writes after re-pointing the history: the rollups then equal the raw computation
--   (marketing/queries.py RAW_*), which the tests hold them to.
-- depends: 0013.identity_conflicts

CREATE TABLE marketing_clicks (
    event_id      text PRIMARY KEY,
    person_id     uuid NOT NULL,
    occurred_at   timestamptz NOT NULL,
    affiliate_id  text NOT NULL,
    ad_id         text NOT NULL
);
CREATE INDEX marketing_clicks_time ON marketing_clicks (occurred_at) INCLUDE (affiliate_id, ad_id, person_id);
CREATE INDEX marketing_clicks_person ON marketing_clicks (person_id, occurred_at);

CREATE TABLE marketing_visitors (
    person_id    uuid PRIMARY KEY,
    visited_at   timestamptz NOT NULL,
    event_id     text NOT NULL,
    source       text NOT NULL,
    campaign     text NOT NULL DEFAULT ''
);

CREATE TABLE marketing_visitors_daily (
    day       date NOT NULL,
    source    text NOT NULL,
    campaign  text NOT NULL,
    visitors  bigint NOT NULL,
    PRIMARY KEY (day, source, campaign)
);

CREATE TABLE marketing_stages (
    person_id    uuid PRIMARY KEY,
    lead_at      timestamptz,
    prospect_at  timestamptz,
    customer_at  timestamptz
);
CREATE INDEX marketing_stages_lead ON marketing_stages (lead_at) WHERE lead_at IS NOT NULL;
CREATE INDEX marketing_stages_customer ON marketing_stages (customer_at) WHERE customer_at IS NOT NULL;

CREATE INDEX purchases_on ON purchases (purchased_on);

CREATE FUNCTION marketing_visitors_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO marketing_visitors_daily AS d (day, source, campaign, visitors)
        SELECT (visited_at AT TIME ZONE 'UTC')::date, source, campaign, -count(*) FROM old_rows GROUP BY 1, 2, 3
        ON CONFLICT (day, source, campaign) DO UPDATE SET visitors = d.visitors + EXCLUDED.visitors;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO marketing_visitors_daily AS d (day, source, campaign, visitors)
        SELECT (visited_at AT TIME ZONE 'UTC')::date, source, campaign, count(*) FROM new_rows GROUP BY 1, 2, 3
        ON CONFLICT (day, source, campaign) DO UPDATE SET visitors = d.visitors + EXCLUDED.visitors;
    END IF;
    DELETE FROM marketing_visitors_daily WHERE visitors = 0;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_visitors_ins AFTER INSERT ON marketing_visitors REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_visitors_count();
CREATE TRIGGER marketing_visitors_upd AFTER UPDATE ON marketing_visitors
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_visitors_count();
CREATE TRIGGER marketing_visitors_del AFTER DELETE ON marketing_visitors REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_visitors_count();

CREATE FUNCTION marketing_stage_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at)
    SELECT person_id,
           min(at) FILTER (WHERE to_stage IN ('lead', 'prospect', 'customer')),
           min(at) FILTER (WHERE to_stage IN ('prospect', 'customer')),
           min(at) FILTER (WHERE to_stage = 'customer')
      FROM new_rows WHERE to_stage IN ('lead', 'prospect', 'customer') GROUP BY person_id
    ON CONFLICT (person_id) DO UPDATE
       SET lead_at = LEAST(s.lead_at, EXCLUDED.lead_at),
           prospect_at = LEAST(s.prospect_at, EXCLUDED.prospect_at),
           customer_at = LEAST(s.customer_at, EXCLUDED.customer_at);
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_stage_moves AFTER INSERT ON stage_transitions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_stage_moves();

CREATE FUNCTION marketing_merge() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_visit marketing_visitors%ROWTYPE;
    old_stages marketing_stages%ROWTYPE;
BEGIN
    UPDATE marketing_clicks SET person_id = NEW.person_id WHERE person_id = NEW.old_id;
    DELETE FROM marketing_visitors WHERE person_id = NEW.old_id RETURNING * INTO old_visit;
    IF old_visit.person_id IS NOT NULL THEN
        INSERT INTO marketing_visitors AS v (person_id, visited_at, event_id, source, campaign)
        VALUES (NEW.person_id, old_visit.visited_at, old_visit.event_id, old_visit.source, old_visit.campaign)
        ON CONFLICT (person_id) DO UPDATE
           SET visited_at = EXCLUDED.visited_at, event_id = EXCLUDED.event_id, source = EXCLUDED.source,
               campaign = EXCLUDED.campaign
         WHERE (EXCLUDED.visited_at, EXCLUDED.event_id) < (v.visited_at, v.event_id);
    END IF;
    DELETE FROM marketing_stages WHERE person_id = NEW.old_id RETURNING * INTO old_stages;
    IF old_stages.person_id IS NOT NULL THEN
        INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at)
        VALUES (NEW.person_id, old_stages.lead_at, old_stages.prospect_at, old_stages.customer_at)
        ON CONFLICT (person_id) DO UPDATE
           SET lead_at = LEAST(s.lead_at, EXCLUDED.lead_at),
               prospect_at = LEAST(s.prospect_at, EXCLUDED.prospect_at),
               customer_at = LEAST(s.customer_at, EXCLUDED.customer_at);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_merge AFTER INSERT OR UPDATE ON person_merges
    FOR EACH ROW EXECUTE FUNCTION marketing_merge();

-- Existing history, once (the same definitions as marketing/queries.py RAW_*).
INSERT INTO marketing_clicks (event_id, person_id, occurred_at, affiliate_id, ad_id)
SELECT event_id, person_id, occurred_at, event::jsonb #>> '{affiliate,affiliate_id}', event::jsonb #>> '{affiliate,ad_id}'
  FROM touchpoints
 WHERE type = 'ad_click' AND NOT automated
   AND jsonb_typeof(event::jsonb #> '{affiliate,affiliate_id}') = 'string'
   AND jsonb_typeof(event::jsonb #> '{affiliate,ad_id}') = 'string';
INSERT INTO marketing_visitors (person_id, visited_at, event_id, source, campaign)
SELECT DISTINCT ON (person_id) person_id, occurred_at, event_id,
       coalesce(nullif(event::jsonb #>> '{campaign,source}', ''), nullif(event::jsonb ->> 'referrer_class', ''), source),
       coalesce(event::jsonb #>> '{campaign,name}', '')
  FROM touchpoints WHERE NOT automated
 ORDER BY person_id, occurred_at, event_id;
INSERT INTO marketing_stages (person_id, lead_at, prospect_at, customer_at)
SELECT person_id,
       min(at) FILTER (WHERE to_stage IN ('lead', 'prospect', 'customer')),
       min(at) FILTER (WHERE to_stage IN ('prospect', 'customer')),
       min(at) FILTER (WHERE to_stage = 'customer')
  FROM stage_transitions WHERE to_stage IN ('lead', 'prospect', 'customer') GROUP BY person_id;
