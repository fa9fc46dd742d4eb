-- The emails report reads credits kept per day and send (issue 13: by send it took 171 ms at p50, 336 at p95, with
-- 10 million touchpoints, crediting every conversion of the range to its e-mail clicks per request).
-- * marketing_weights(persons, channel): the persons' conversions (became a lead, a customer; each purchase)
--   credited to their clicks in each kept lookback, with the weight of every model: over ad clicks
--   (channel 'ads', marketing_clicks: affiliate, ad) or e-mail link clicks ('emails', marketing_email_events:
--   campaign, send). One definition for both: marketing_credit (0023, ads) now reads it too, unchanged in
--   what it writes.
-- * marketing_email_credits: the e-mail clicks' rows of it per person, so a person's old credit can be taken
--   out of the daily sums; marketing_email_credits_daily: the sums per lookback, model, day, send and campaign,
--   a row kept while any conversion touches it (even at weight 0), as marketing_credits_daily.
-- * A person's e-mail credits are computed anew (marketing_email_credit) when their e-mail events, stage times or
--   purchases change (statement triggers on the three tables: a click in, a merge re-pointing events, a late
--   stage move, an edited purchase). The fold of ingestion is unchanged.
-- * An erasure scrubs the link (send, campaign) from the person's touchpoints (ingest SCRUB_HISTORY), so their
--   e-mail events leave marketing_email_events too (a trigger on persons.erased_at): the opens, clicks and credits
--   then equal the raw computation after an erasure, as the other rollups do.
-- No personal data beyond ids, as 0020.
-- depends: 0027.marketing_impressions

CREATE TABLE marketing_email_credits (
    person_id    uuid NOT NULL,
    kind         smallint NOT NULL,  -- 1 became a lead, 2 became a customer, 3 a purchase
    ref          text NOT NULL,      -- the person (1, 2) or the purchase
    day          date NOT NULL,      -- the conversion's day (a purchase's own day)
    lookback     integer NOT NULL,
    campaign_id  text NOT NULL,      -- as the click's link names it ('' without)
    send_id      text NOT NULL,
    w_first      numeric NOT NULL,
    w_last       numeric NOT NULL,
    w_linear     numeric NOT NULL,
    w_position   numeric NOT NULL,
    lead         integer NOT NULL,
    customer     integer NOT NULL,
    revenue      numeric NOT NULL
);
CREATE INDEX marketing_email_credits_person ON marketing_email_credits (person_id);

CREATE TABLE marketing_email_credits_daily (
    lookback     integer NOT NULL,
    model        text NOT NULL,
    day          date NOT NULL,
    send_id      text NOT NULL,
    campaign_id  text NOT NULL,
    touches      bigint NOT NULL,
    leads        numeric NOT NULL,
    customers    numeric NOT NULL,
    revenue      numeric NOT NULL,
    PRIMARY KEY (lookback, model, day, send_id, campaign_id)
);
CREATE INDEX marketing_email_credits_daily_empty ON marketing_email_credits_daily (lookback) WHERE touches = 0;

-- The persons' credits per conversion, lookback and clicked ad (channel 'ads') or e-mail send ('emails'), with
-- the weights of marketing/queries.py CREDITS, summed per conversion and ad or send.
CREATE FUNCTION marketing_weights(persons uuid[], channel text)
RETURNS TABLE (person_id uuid, kind integer, ref text, day date, lookback integer, affiliate_id text, ad_id text,
               w_first numeric, w_last numeric, w_linear numeric, w_position numeric, lead integer,
               customer integer, revenue numeric)
LANGUAGE sql STABLE AS $$
WITH conversions AS (
    SELECT 1 AS kind, s.person_id::text AS ref, s.person_id, s.lead_at AS at,
           (s.lead_at AT TIME ZONE 'UTC')::date AS day, 1 AS lead, 0 AS customer, 0::numeric AS revenue
      FROM marketing_stages AS s WHERE s.person_id = ANY(persons) AND s.lead_at IS NOT NULL
    UNION ALL
    SELECT 2, s.person_id::text, s.person_id, s.customer_at, (s.customer_at AT TIME ZONE 'UTC')::date, 0, 1, 0
      FROM marketing_stages AS s WHERE s.person_id = ANY(persons) AND s.customer_at IS NOT NULL
    UNION ALL
    SELECT 3, u.id::text, u.person_id, (u.purchased_on + 1)::timestamp AT TIME ZONE 'UTC', u.purchased_on, 0, 0,
           u.quantity * u.price_paid
      FROM purchases AS u WHERE u.person_id = ANY(persons)
), clicks AS (
    SELECT k.event_id, k.person_id, k.occurred_at, k.affiliate_id, k.ad_id
      FROM marketing_clicks AS k WHERE channel = 'ads' AND k.person_id = ANY(persons)
    UNION ALL
    SELECT e.event_id, e.person_id, e.occurred_at, e.campaign_id, e.send_id
      FROM marketing_email_events AS e
     WHERE channel = 'emails' AND e.person_id = ANY(persons) AND e.type = 'link_click'
), touches AS (
    SELECT c.*, l.days AS lookback, k.affiliate_id, k.ad_id,
           row_number() OVER w AS k, count(*) OVER (PARTITION BY c.kind, c.ref, l.days) AS n
      FROM conversions AS c
     CROSS JOIN unnest(marketing_lookbacks()) AS l(days)
      JOIN clicks AS k
        ON k.person_id = c.person_id AND k.occurred_at <= c.at
       AND k.occurred_at > c.at - make_interval(days => l.days)
    WINDOW w AS (PARTITION BY c.kind, c.ref, l.days ORDER BY k.occurred_at, k.event_id)
)
SELECT t.person_id, t.kind, t.ref, t.day, t.lookback, t.affiliate_id, t.ad_id,
       sum((t.k = 1)::int::numeric), sum((t.k = t.n)::int::numeric), sum(1.0 / t.n),
       sum(CASE WHEN t.n = 1 THEN 1.0 WHEN t.n = 2 THEN 0.5 WHEN t.k = 1 OR t.k = t.n THEN 0.4
                ELSE 0.2 / (t.n - 2) END),
       t.lead, t.customer, t.revenue
  FROM touches AS t
 GROUP BY t.person_id, t.kind, t.ref, t.day, t.lookback, t.affiliate_id, t.ad_id, t.lead, t.customer, t.revenue
$$;

CREATE OR REPLACE FUNCTION marketing_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
DELETE FROM marketing_credits WHERE person_id = ANY(persons);
INSERT INTO marketing_credits (person_id, kind, ref, day, lookback, affiliate_id, ad_id, w_first, w_last, w_linear,
                               w_position, lead, customer, revenue)
SELECT * FROM marketing_weights(persons, 'ads');
$$;

-- Adds the persons' e-mail credits to (sign 1) or takes them out of (-1) the daily sums.
CREATE FUNCTION marketing_email_credits_add(persons uuid[], sign integer) RETURNS void LANGUAGE sql AS $$
INSERT INTO marketing_email_credits_daily AS d (lookback, model, day, send_id, campaign_id, touches, leads,
                                                customers, revenue)
SELECT r.lookback, m.model, r.day, r.send_id, r.campaign_id, sign * count(*), sign * sum(m.w * r.lead),
       sign * sum(m.w * r.customer), sign * sum(m.w * r.revenue)
  FROM marketing_email_credits AS r
 CROSS JOIN LATERAL (VALUES ('first', r.w_first), ('last', r.w_last), ('linear', r.w_linear),
                            ('position', r.w_position)) AS m(model, w)
 WHERE r.person_id = ANY(persons)
 GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (lookback, model, day, send_id, campaign_id) DO UPDATE
   SET touches = d.touches + EXCLUDED.touches, leads = d.leads + EXCLUDED.leads,
       customers = d.customers + EXCLUDED.customers, revenue = d.revenue + EXCLUDED.revenue
$$;

CREATE FUNCTION marketing_email_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
SELECT marketing_email_credits_add(persons, -1);
DELETE FROM marketing_email_credits WHERE person_id = ANY(persons);
INSERT INTO marketing_email_credits (person_id, kind, ref, day, lookback, campaign_id, send_id, w_first, w_last,
                                     w_linear, w_position, lead, customer, revenue)
SELECT * FROM marketing_weights(persons, 'emails');
SELECT marketing_email_credits_add(persons, 1);
DELETE FROM marketing_email_credits_daily WHERE touches = 0;
$$;

-- Any change of a person's e-mail events, stage times or purchases: their e-mail credits anew (the persons of the
-- rows before and after it; the three tables all name the person as person_id).
CREATE FUNCTION marketing_email_recredit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    persons uuid[] := '{}';
BEGIN
    IF TG_OP <> 'DELETE' THEN
        persons := persons || ARRAY(SELECT DISTINCT person_id FROM new_rows);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        persons := persons || ARRAY(SELECT DISTINCT person_id FROM old_rows);
    END IF;
    PERFORM marketing_email_credit(ARRAY(SELECT DISTINCT unnest(persons)));
    RETURN NULL;
END $$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['marketing_email_events', 'marketing_stages', 'purchases'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION marketing_email_recredit()', t || '_email_credit_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION marketing_email_recredit()', t || '_email_credit_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION marketing_email_recredit()', t || '_email_credit_del', t);
    END LOOP;
END $$;

CREATE FUNCTION marketing_erase_emails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM marketing_email_events WHERE person_id = NEW.person_id;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_erase_emails AFTER UPDATE OF erased_at ON persons
    FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL) EXECUTE FUNCTION marketing_erase_emails();

-- Existing history, once (an erased person's e-mail events included).
DELETE FROM marketing_email_events WHERE person_id IN (SELECT person_id FROM persons WHERE erased_at IS NOT NULL);
DO $$
BEGIN
    PERFORM marketing_email_credit(
        ARRAY(SELECT DISTINCT person_id FROM marketing_email_events WHERE type = 'link_click'));
END $$;
