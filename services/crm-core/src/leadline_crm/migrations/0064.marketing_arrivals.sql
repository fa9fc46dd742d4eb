-- Attribution in the funnel (issue 13): a person's conversions are credited to the sources and campaigns of
-- their arrivals, as ads are to ad clicks.
-- * marketing_arrivals: one row per touch of a person (not a bot's) that came from somewhere: it names a UTM
--   source, or its referrer class is neither internal nor direct (search, social, e-mail, affiliate, paid, another
--   site); with its origin as the funnel groups it (source: the UTM source, else the referrer class; campaign: the
--   UTM campaign, '' without). Written by ingestion per batch (marketing/rollups.py fold) as marketing_clicks
--   is, re-pointed by a merge. Page views inside the site and direct visits are not arrivals: a conversion with no
--   arrival in its lookback is credited to its first visit's source, as before.
-- * marketing_stage_credits: each stage move's credit per kept lookback (7, 30, 90 days) to the (source,
--   campaign) of the person's arrivals in it, with the weight of every model and the days since the stage before
--   (the median's input); a move with no arrival in its window has one row for its first visit's origin, weight 1
--   in every model. A person's rows are computed anew (marketing_stage_credit) when their arrivals or stage row
--   change (a late arrival, a merge, a first visit found earlier), by the trigger function of 0063, renamed
--   marketing_recredit, which now keeps each kind of credit from the tables it depends on. The funnel by source or
--   campaign reads the range's rows for a kept lookback; another lookback is credited per request.
-- No personal data beyond ids; an erasure keeps the origin on the raw rows too (it drops the link and the
-- referrer URL, not the campaign or the class).
-- depends: 0063.marketing_email_credits

CREATE TABLE marketing_arrivals (
    event_id     text PRIMARY KEY,
    person_id    uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    source       text NOT NULL,
    campaign     text NOT NULL
);
CREATE INDEX marketing_arrivals_time ON marketing_arrivals (occurred_at) INCLUDE (person_id, source, campaign);
CREATE INDEX marketing_arrivals_person ON marketing_arrivals (person_id, occurred_at);

CREATE FUNCTION marketing_merge_arrivals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE marketing_arrivals SET person_id = NEW.person_id WHERE person_id = NEW.old_id;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_merge_arrivals AFTER INSERT OR UPDATE ON person_merges
    FOR EACH ROW EXECUTE FUNCTION marketing_merge_arrivals();

CREATE TABLE marketing_stage_credits (
    person_id   uuid NOT NULL,
    stage       smallint NOT NULL,  -- 1 became a lead, 2 a prospect, 3 a customer
    at          timestamptz NOT NULL,
    days        numeric,            -- since the stage before (the first visit for a lead)
    lookback    integer NOT NULL,
    dim         text NOT NULL,      -- source or campaign: the funnel's grouping
    key         text NOT NULL,      -- the source or campaign credited
    w_first     numeric NOT NULL,
    w_last      numeric NOT NULL,
    w_linear    numeric NOT NULL,
    w_position  numeric NOT NULL
);
CREATE INDEX marketing_stage_credits_at ON marketing_stage_credits (lookback, dim, at);
CREATE INDEX marketing_stage_credits_person ON marketing_stage_credits (person_id);

-- The persons' stage moves credited to their arrivals per kept lookback (the weights of marketing/queries.py
-- FUNNEL_CREDITED), summed per move and source, and per move and campaign: the funnel reads a row per move and key.
CREATE FUNCTION marketing_stage_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
DELETE FROM marketing_stage_credits WHERE person_id = ANY(persons);
INSERT INTO marketing_stage_credits (person_id, stage, at, days, lookback, dim, key, w_first, w_last, w_linear,
                                     w_position)
WITH conversions AS (
    SELECT s.person_id, v.stage, v.at, extract(epoch FROM v.at - v.since) / 86400 AS days, l.days AS lookback,
           coalesce(s.source, '') AS source, coalesce(s.campaign, '') AS campaign
      FROM marketing_stages AS s
     CROSS JOIN LATERAL (VALUES (1, s.lead_at, s.visited_at), (2, s.prospect_at, s.lead_at),
                                (3, s.customer_at, coalesce(s.prospect_at, s.lead_at))) AS v(stage, at, since)
     CROSS JOIN unnest(marketing_lookbacks()) AS l(days)
     WHERE s.person_id = ANY(persons) AND v.at IS NOT NULL
), touches AS (
    SELECT c.person_id, c.stage, c.at, c.days, c.lookback, a.source, a.campaign,
           row_number() OVER w AS k, count(*) OVER (PARTITION BY c.person_id, c.stage, c.lookback) AS n
      FROM conversions AS c
      JOIN marketing_arrivals AS a
        ON a.person_id = c.person_id AND a.occurred_at <= c.at
       AND a.occurred_at > c.at - make_interval(days => c.lookback)
    WINDOW w AS (PARTITION BY c.person_id, c.stage, c.lookback ORDER BY a.occurred_at, a.event_id)
), weighted AS (
    SELECT person_id, stage, at, days, lookback, source, campaign, (k = 1)::int::numeric AS w_first,
           (k = n)::int::numeric AS w_last, 1.0 / n AS w_linear,
           CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 ELSE 0.2 / (n - 2) END AS w_position
      FROM touches
    UNION ALL
    SELECT c.person_id, c.stage, c.at, c.days, c.lookback, c.source, c.campaign, 1.0, 1.0, 1.0, 1.0
      FROM conversions AS c
     WHERE NOT EXISTS (SELECT 1 FROM touches AS t
                        WHERE t.person_id = c.person_id AND t.stage = c.stage AND t.lookback = c.lookback)
)
SELECT w.person_id, w.stage, w.at, w.days, w.lookback, d.dim, d.key, sum(w.w_first), sum(w.w_last),
       sum(w.w_linear), sum(w.w_position)
  FROM weighted AS w CROSS JOIN LATERAL (VALUES ('source', w.source), ('campaign', w.campaign)) AS d(dim, key)
 GROUP BY w.person_id, w.stage, w.at, w.days, w.lookback, d.dim, d.key;
$$;

-- One trigger function keeps both kinds of credit, each from the tables it depends on.
ALTER FUNCTION marketing_email_recredit() RENAME TO marketing_recredit;
CREATE OR REPLACE FUNCTION marketing_recredit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    persons uuid[] := '{}';
BEGIN
    IF TG_OP <> 'DELETE' THEN
        persons := persons || ARRAY(SELECT DISTINCT person_id FROM new_rows);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        persons := persons || ARRAY(SELECT DISTINCT person_id FROM old_rows);
    END IF;
    persons := ARRAY(SELECT DISTINCT unnest(persons));
    IF TG_TABLE_NAME <> 'marketing_arrivals' THEN
        PERFORM marketing_email_credit(persons);  -- e-mail events, stage times, purchases
    END IF;
    IF TG_TABLE_NAME IN ('marketing_arrivals', 'marketing_stages') THEN
        PERFORM marketing_stage_credit(persons);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_arrivals_credit_ins AFTER INSERT ON marketing_arrivals
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION marketing_recredit();
CREATE TRIGGER marketing_arrivals_credit_upd AFTER UPDATE ON marketing_arrivals
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION marketing_recredit();
CREATE TRIGGER marketing_arrivals_credit_del AFTER DELETE ON marketing_arrivals
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION marketing_recredit();

-- Existing history, once (the same definition as marketing/queries.py RAW_ARRIVALS).
INSERT INTO marketing_arrivals (event_id, person_id, occurred_at, source, campaign)
SELECT event_id, person_id, occurred_at,
       coalesce(nullif(event::jsonb #>> '{campaign,source}', ''), event::jsonb ->> 'referrer_class'),
       coalesce(event::jsonb #>> '{campaign,name}', '')
  FROM touchpoints
 WHERE NOT automated
   AND (coalesce(event::jsonb #>> '{campaign,source}', '') <> ''
        OR coalesce(event::jsonb ->> 'referrer_class', '') NOT IN ('', 'internal', 'direct'));
DO $$
BEGIN
    PERFORM marketing_stage_credit(ARRAY(SELECT person_id FROM marketing_stages));
END $$;
