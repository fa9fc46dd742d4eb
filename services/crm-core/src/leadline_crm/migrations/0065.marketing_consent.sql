-- Marketing reports honour a refused analytics consent (issue 13; people/consent.py keeps it on persons.consent).
-- A person who said no to analytics (analytics.granted false; never stated is not a refusal) is left out of what
-- ties their own touches to their own conversions or profile: their conversions are credited to no ad, e-mail or
-- source (ads, affiliates, emails, the funnel by source or campaign), and demographics and next-product
-- suggestions leave them out (marketing/queries.py, at read time: both read the person's row already). Counts of
-- events and stage moves (clicks, impressions, opens, visitors, the funnel's totals, products) still hold them:
-- they say nothing of a person.
-- * marketing_consenting(persons): the persons among them who did not refuse; the credit functions of 0063 and
--   0064 now compute rows for those only, and drop the others' rows (marketing_weights restated, with a plan fix;
--   marketing_stage_credit renamed *_all and wrapped).
-- * A change of a person's analytics consent computes their credits anew (a trigger on persons, only when the
--   analytics flag changes), so the kept rollups equal the raw computation, which leaves them out as well.
-- depends: 0064.marketing_arrivals 0033.person_consent

CREATE INDEX persons_analytics_refused ON persons (person_id) WHERE (consent -> 'analytics' ->> 'granted') = 'false';

CREATE FUNCTION marketing_consenting(persons uuid[]) RETURNS uuid[] LANGUAGE sql STABLE AS $$
SELECT coalesce(array_agg(p.id), '{}') FROM unnest(persons) AS p(id)
 WHERE NOT EXISTS (SELECT 1 FROM persons AS x
                    WHERE x.person_id = p.id AND (x.consent -> 'analytics' ->> 'granted') = 'false')
$$;

-- The credits of 0063 for the consenting persons only; and each conversion's clicks found by an index range scan
-- per conversion (LATERAL): with a plain join the planner, which cannot tell how many persons the array holds,
-- took a nested loop over every e-mail click for every conversion (12,500 persons: 50 million rows compared).
CREATE OR REPLACE FUNCTION marketing_weights(persons uuid[], channel text)
RETURNS TABLE (person_id uuid, kind integer, ref text, day date, lookback integer, affiliate_id text, ad_id text,
               w_first numeric, w_last numeric, w_linear numeric, w_position numeric, lead integer,
               customer integer, revenue numeric)
LANGUAGE sql STABLE AS $$
WITH who AS (SELECT marketing_consenting(persons) AS ids), conversions AS (
    SELECT 1 AS kind, s.person_id::text AS ref, s.person_id, s.lead_at AS at,
           (s.lead_at AT TIME ZONE 'UTC')::date AS day, 1 AS lead, 0 AS customer, 0::numeric AS revenue
      FROM marketing_stages AS s WHERE s.person_id = ANY((SELECT ids FROM who)::uuid[]) AND s.lead_at IS NOT NULL
    UNION ALL
    SELECT 2, s.person_id::text, s.person_id, s.customer_at, (s.customer_at AT TIME ZONE 'UTC')::date, 0, 1, 0
      FROM marketing_stages AS s WHERE s.person_id = ANY((SELECT ids FROM who)::uuid[]) AND s.customer_at IS NOT NULL
    UNION ALL
    SELECT 3, u.id::text, u.person_id, (u.purchased_on + 1)::timestamp AT TIME ZONE 'UTC', u.purchased_on, 0, 0,
           u.quantity * u.price_paid
      FROM purchases AS u WHERE u.person_id = ANY((SELECT ids FROM who)::uuid[])
), touches AS (
    SELECT c.*, l.days AS lookback, k.affiliate_id, k.ad_id,
           row_number() OVER w AS k, count(*) OVER (PARTITION BY c.kind, c.ref, l.days) AS n
      FROM conversions AS c
     CROSS JOIN unnest(marketing_lookbacks()) AS l(days)
     CROSS JOIN LATERAL (  -- index range scans per conversion, whatever the planner guesses of how many persons
        SELECT k.event_id, k.occurred_at, k.affiliate_id, k.ad_id FROM marketing_clicks AS k
         WHERE channel = 'ads' AND k.person_id = c.person_id AND k.occurred_at <= c.at
           AND k.occurred_at > c.at - make_interval(days => l.days)
        UNION ALL
        SELECT e.event_id, e.occurred_at, e.campaign_id, e.send_id FROM marketing_email_events AS e
         WHERE channel = 'emails' AND e.person_id = c.person_id AND e.type = 'link_click' AND e.occurred_at <= c.at
           AND e.occurred_at > c.at - make_interval(days => l.days)) AS k
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

ALTER FUNCTION marketing_stage_credit(uuid[]) RENAME TO marketing_stage_credit_all;
CREATE FUNCTION marketing_stage_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
DELETE FROM marketing_stage_credits WHERE person_id = ANY(persons);
SELECT marketing_stage_credit_all(marketing_consenting(persons));
$$;

CREATE FUNCTION marketing_consent_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM marketing_credit(ARRAY[NEW.person_id]);
    PERFORM marketing_email_credit(ARRAY[NEW.person_id]);
    PERFORM marketing_stage_credit(ARRAY[NEW.person_id]);
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_consent_changed AFTER UPDATE OF consent ON persons
    FOR EACH ROW WHEN ((OLD.consent -> 'analytics' ->> 'granted') IS DISTINCT FROM (NEW.consent -> 'analytics' ->> 'granted'))
    EXECUTE FUNCTION marketing_consent_changed();

-- Those who refused already, once.
DO $$
DECLARE
    refused uuid[] := ARRAY(SELECT person_id FROM persons WHERE (consent -> 'analytics' ->> 'granted') = 'false');
BEGIN
    PERFORM marketing_credit(refused);
    PERFORM marketing_email_credit(refused);
    PERFORM marketing_stage_credit(refused);
END $$;
