-- The emails report and device in demographics (issue 13).
-- * marketing_email_events: one row per e-mail open or tracked-link click of a person (not an image proxy's, a
--   link scanner's or a bot's: those are `automated`), with the send and campaign its link names; written by
--   ingestion per batch (marketing/rollups.py fold) as marketing_clicks is, re-pointed by a merge.
-- * device: the device class (desktop, mobile, tablet; '' without a user agent) of a visitor's first touch,
--   kept on marketing_visitors and copied to marketing_stages with the rest of the first visit (0022), so
--   demographics counts leads and customers by device without reading touchpoints.
-- depends: 0023.marketing_credits

CREATE TABLE marketing_email_events (
    event_id     text PRIMARY KEY,
    person_id    uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    type         text NOT NULL,
    campaign_id  text NOT NULL,
    send_id      text NOT NULL
);
CREATE INDEX marketing_email_events_time ON marketing_email_events (occurred_at);
CREATE INDEX marketing_email_events_person ON marketing_email_events (person_id, occurred_at);

-- The device class of an enriched event (the same rule as marketing/rollups.py device).
CREATE FUNCTION marketing_device(ua jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN jsonb_typeof(ua) IS DISTINCT FROM 'object' THEN ''
            WHEN lower(coalesce(ua ->> 'device', '')) ~ '(ipad|tablet)' THEN 'tablet'
            WHEN ua -> 'is_mobile' = 'true'::jsonb THEN 'mobile'
            ELSE 'desktop' END
$$;

ALTER TABLE marketing_visitors ADD COLUMN device text NOT NULL DEFAULT '';
ALTER TABLE marketing_stages ADD COLUMN device text;

CREATE FUNCTION marketing_merge_emails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE marketing_email_events SET person_id = NEW.person_id WHERE person_id = NEW.old_id;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_merge_emails AFTER INSERT OR UPDATE ON person_merges
    FOR EACH ROW EXECUTE FUNCTION marketing_merge_emails();

CREATE OR REPLACE FUNCTION marketing_visitors_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
    DELETE FROM marketing_visitors_daily WHERE visitors = 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_stage_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at, visited_at, source, campaign,
                                       device)
    SELECT m.person_id, m.lead_at, m.prospect_at, m.customer_at, v.visited_at, v.source, v.campaign, v.device
      FROM (SELECT person_id,
                   min(at) FILTER (WHERE to_stage IN ('lead', 'prospect', 'customer')) AS lead_at,
                   min(at) FILTER (WHERE to_stage IN ('prospect', 'customer')) AS prospect_at,
                   min(at) FILTER (WHERE to_stage = 'customer') AS customer_at
              FROM new_rows WHERE to_stage IN ('lead', 'prospect', 'customer') GROUP BY person_id) AS m
      LEFT JOIN marketing_visitors AS v ON v.person_id = m.person_id
    ON CONFLICT (person_id) DO UPDATE
       SET lead_at = LEAST(s.lead_at, EXCLUDED.lead_at),
           prospect_at = LEAST(s.prospect_at, EXCLUDED.prospect_at),
           customer_at = LEAST(s.customer_at, EXCLUDED.customer_at);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_merge() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_visit marketing_visitors%ROWTYPE;
    old_stages marketing_stages%ROWTYPE;
BEGIN
    UPDATE marketing_clicks SET person_id = NEW.person_id WHERE person_id = NEW.old_id;
    DELETE FROM marketing_visitors WHERE person_id = NEW.old_id RETURNING * INTO old_visit;
    IF old_visit.person_id IS NOT NULL THEN
        INSERT INTO marketing_visitors AS v (person_id, visited_at, event_id, source, campaign, device)
        VALUES (NEW.person_id, old_visit.visited_at, old_visit.event_id, old_visit.source, old_visit.campaign,
                old_visit.device)
        ON CONFLICT (person_id) DO UPDATE
           SET visited_at = EXCLUDED.visited_at, event_id = EXCLUDED.event_id, source = EXCLUDED.source,
               campaign = EXCLUDED.campaign, device = EXCLUDED.device
         WHERE (EXCLUDED.visited_at, EXCLUDED.event_id) < (v.visited_at, v.event_id);
    END IF;
    DELETE FROM marketing_stages WHERE person_id = NEW.old_id RETURNING * INTO old_stages;
    IF old_stages.person_id IS NOT NULL THEN
        INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at, visited_at, source,
                                           campaign, device)
        SELECT NEW.person_id, old_stages.lead_at, old_stages.prospect_at, old_stages.customer_at,
               v.visited_at, v.source, v.campaign, v.device
          FROM (SELECT 1) AS one LEFT JOIN marketing_visitors AS v ON v.person_id = NEW.person_id
        ON CONFLICT (person_id) DO UPDATE
           SET lead_at = LEAST(s.lead_at, EXCLUDED.lead_at),
               prospect_at = LEAST(s.prospect_at, EXCLUDED.prospect_at),
               customer_at = LEAST(s.customer_at, EXCLUDED.customer_at);
    END IF;
    RETURN NULL;
END $$;

-- Existing history, once (the same definitions as marketing/queries.py RAW_EMAIL_EVENTS and RAW_VISITORS).
INSERT INTO marketing_email_events (event_id, person_id, occurred_at, type, campaign_id, send_id)
SELECT event_id, person_id, occurred_at, type, coalesce(event::jsonb #>> '{link,campaign_id}', ''),
       event::jsonb #>> '{link,send_id}'
  FROM touchpoints
 WHERE type IN ('email_open', 'link_click') AND NOT automated
   AND jsonb_typeof(event::jsonb #> '{link,send_id}') = 'string';
UPDATE marketing_visitors AS v SET device = marketing_device(t.event::jsonb -> 'ua')
  FROM touchpoints AS t WHERE t.event_id = v.event_id AND marketing_device(t.event::jsonb -> 'ua') <> '';
UPDATE marketing_stages AS s SET device = v.device FROM marketing_visitors AS v WHERE v.person_id = s.person_id;
