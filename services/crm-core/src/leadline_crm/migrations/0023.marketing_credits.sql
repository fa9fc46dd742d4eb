-- Ads, affiliates and cross-sell read small tables kept as clicks, stage times and purchases change (issue 13:
-- <= 100 ms with 10 million touchpoints; they credited every conversion in the range to its clicks per request).
-- * marketing_clicks_daily: ad clicks per day and ad, and how many of them are by persons who are prospects now;
--   kept by statement triggers on marketing_clicks (a click in, a merge re-pointing clicks) and on
--   marketing_stages (a person becoming a prospect, a merge moving their stage row).
-- * marketing_credits: each conversion's credit to the ads clicked in the lookback before it, one row per
--   (conversion, ad, lookback) with the weight of every attribution model. Lookbacks 7, 30 and 90 days are kept
--   (marketing_lookbacks()); another lookback is computed per request as before. A person's rows are computed
--   anew (marketing_credit) whenever their clicks, stage times or purchases change, so late clicks, merges and
--   edited purchases keep them exact. marketing_credits_daily adds them up per day, lookback, model and ad
--   (statement triggers, transition tables), keeping a row while any conversion touches it, even with weight 0,
--   so the report lists the same ads as the computation from raw tables.
-- * marketing_baskets / marketing_pairs / marketing_buyers: cross-sell's baskets are a customer's products in one
--   calendar month; pairs of products in the same basket counted per month (a = b: the product's buyers), and
--   buyers per month; kept by statement triggers on purchases, which rebuild only the changed baskets.
-- None holds personal data beyond ids, as 0020.
-- depends: 0022.marketing_stage_visits

CREATE TABLE marketing_clicks_daily (
    day              date NOT NULL,
    affiliate_id     text NOT NULL,
    ad_id            text NOT NULL,
    clicks           bigint NOT NULL,
    prospect_clicks  bigint NOT NULL,
    PRIMARY KEY (day, affiliate_id, ad_id)
);

CREATE TABLE marketing_credits (
    person_id     uuid NOT NULL,
    kind          smallint NOT NULL,  -- 1 became a lead, 2 became a customer, 3 a purchase
    ref           text NOT NULL,      -- the person (1, 2) or the purchase
    day           date NOT NULL,      -- the conversion's day (a purchase's own day)
    lookback      integer NOT NULL,
    affiliate_id  text NOT NULL,
    ad_id         text NOT NULL,
    w_first       numeric NOT NULL,
    w_last        numeric NOT NULL,
    w_linear      numeric NOT NULL,
    w_position    numeric NOT NULL,
    lead          integer NOT NULL,
    customer      integer NOT NULL,
    revenue       numeric NOT NULL
);
CREATE INDEX marketing_credits_person ON marketing_credits (person_id);

CREATE TABLE marketing_credits_daily (
    lookback      integer NOT NULL,
    model         text NOT NULL,
    day           date NOT NULL,
    affiliate_id  text NOT NULL,
    ad_id         text NOT NULL,
    touches       bigint NOT NULL,
    leads         numeric NOT NULL,
    customers     numeric NOT NULL,
    revenue       numeric NOT NULL,
    PRIMARY KEY (lookback, model, day, affiliate_id, ad_id)
);

CREATE TABLE marketing_baskets (
    person_id   uuid NOT NULL,
    month       date NOT NULL,
    product_id  uuid NOT NULL,
    PRIMARY KEY (person_id, month, product_id)
);

CREATE TABLE marketing_pairs (
    month     date NOT NULL,
    a         uuid NOT NULL,
    b         uuid NOT NULL,
    together  bigint NOT NULL,
    PRIMARY KEY (month, a, b)
);

CREATE TABLE marketing_buyers (
    month   date PRIMARY KEY,
    buyers  bigint NOT NULL
);

CREATE FUNCTION marketing_lookbacks() RETURNS integer[] LANGUAGE sql IMMUTABLE AS $$ SELECT ARRAY[7, 30, 90] $$;

-- A person's credits from their stage times, purchases and clicks (the same weights as marketing/queries.py
-- CREDITS, summed per conversion and ad).
CREATE FUNCTION marketing_credit(persons uuid[]) RETURNS void LANGUAGE sql AS $$
DELETE FROM marketing_credits WHERE person_id = ANY(persons);
INSERT INTO marketing_credits (person_id, kind, ref, day, lookback, affiliate_id, ad_id, w_first, w_last, w_linear,
                               w_position, lead, customer, revenue)
WITH conversions AS (
    SELECT 1 AS kind, person_id::text AS ref, person_id, lead_at AS at, (lead_at AT TIME ZONE 'UTC')::date AS day,
           1 AS lead, 0 AS customer, 0::numeric AS revenue
      FROM marketing_stages WHERE person_id = ANY(persons) AND lead_at IS NOT NULL
    UNION ALL
    SELECT 2, person_id::text, person_id, customer_at, (customer_at AT TIME ZONE 'UTC')::date, 0, 1, 0
      FROM marketing_stages WHERE person_id = ANY(persons) AND customer_at IS NOT NULL
    UNION ALL
    SELECT 3, id::text, person_id, (purchased_on + 1)::timestamp AT TIME ZONE 'UTC', purchased_on, 0, 0,
           quantity * price_paid
      FROM purchases WHERE person_id = ANY(persons)
), touches AS (
    SELECT c.*, l.days AS lookback, k.affiliate_id, k.ad_id,
           row_number() OVER w AS k, count(*) OVER (PARTITION BY c.kind, c.ref, l.days) AS n
      FROM conversions AS c
     CROSS JOIN unnest(marketing_lookbacks()) AS l(days)
      JOIN marketing_clicks AS k
        ON k.person_id = c.person_id AND k.occurred_at <= c.at
       AND k.occurred_at > c.at - make_interval(days => l.days)
    WINDOW w AS (PARTITION BY c.kind, c.ref, l.days ORDER BY k.occurred_at, k.event_id)
)
SELECT person_id, kind, ref, day, lookback, affiliate_id, ad_id,
       sum((k = 1)::int::numeric), sum((k = n)::int::numeric), sum(1.0 / n),
       sum(CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 ELSE 0.2 / (n - 2) END),
       lead, customer, revenue
  FROM touches
 GROUP BY person_id, kind, ref, day, lookback, affiliate_id, ad_id, lead, customer, revenue
$$;

CREATE FUNCTION marketing_credits_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO marketing_credits_daily AS d (lookback, model, day, affiliate_id, ad_id, touches, leads,
                                                  customers, revenue)
        SELECT r.lookback, m.model, r.day, r.affiliate_id, r.ad_id, count(*), sum(m.w * r.lead),
               sum(m.w * r.customer), sum(m.w * r.revenue)
          FROM new_rows AS r
         CROSS JOIN LATERAL (VALUES ('first', r.w_first), ('last', r.w_last), ('linear', r.w_linear),
                                    ('position', r.w_position)) AS m(model, w)
         GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (lookback, model, day, affiliate_id, ad_id) DO UPDATE
           SET touches = d.touches + EXCLUDED.touches, leads = d.leads + EXCLUDED.leads,
               customers = d.customers + EXCLUDED.customers, revenue = d.revenue + EXCLUDED.revenue;
    ELSE
        INSERT INTO marketing_credits_daily AS d (lookback, model, day, affiliate_id, ad_id, touches, leads,
                                                  customers, revenue)
        SELECT r.lookback, m.model, r.day, r.affiliate_id, r.ad_id, -count(*), -sum(m.w * r.lead),
               -sum(m.w * r.customer), -sum(m.w * r.revenue)
          FROM old_rows AS r
         CROSS JOIN LATERAL (VALUES ('first', r.w_first), ('last', r.w_last), ('linear', r.w_linear),
                                    ('position', r.w_position)) AS m(model, w)
         GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (lookback, model, day, affiliate_id, ad_id) DO UPDATE
           SET touches = d.touches + EXCLUDED.touches, leads = d.leads + EXCLUDED.leads,
               customers = d.customers + EXCLUDED.customers, revenue = d.revenue + EXCLUDED.revenue;
        DELETE FROM marketing_credits_daily AS d
         USING (SELECT DISTINCT lookback, day, affiliate_id, ad_id FROM old_rows) AS o
         WHERE d.lookback = o.lookback AND d.day = o.day AND d.affiliate_id = o.affiliate_id
           AND d.ad_id = o.ad_id AND d.touches = 0;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_credits_ins AFTER INSERT ON marketing_credits REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_credits_count();
CREATE TRIGGER marketing_credits_del AFTER DELETE ON marketing_credits REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_credits_count();

-- Clicks per day and ad, with clicks from prospects; a changed click (a merge) is taken out as it was counted.
CREATE FUNCTION marketing_clicks_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO marketing_clicks_daily AS d (day, affiliate_id, ad_id, clicks, prospect_clicks)
        SELECT (k.occurred_at AT TIME ZONE 'UTC')::date, k.affiliate_id, k.ad_id, -count(*),
               -count(*) FILTER (WHERE s.prospect_at IS NOT NULL)
          FROM old_rows AS k LEFT JOIN marketing_stages AS s ON s.person_id = k.person_id
         GROUP BY 1, 2, 3
        ON CONFLICT (day, affiliate_id, ad_id) DO UPDATE
           SET clicks = d.clicks + EXCLUDED.clicks, prospect_clicks = d.prospect_clicks + EXCLUDED.prospect_clicks;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO marketing_clicks_daily AS d (day, affiliate_id, ad_id, clicks, prospect_clicks)
        SELECT (k.occurred_at AT TIME ZONE 'UTC')::date, k.affiliate_id, k.ad_id, count(*),
               count(*) FILTER (WHERE s.prospect_at IS NOT NULL)
          FROM new_rows AS k LEFT JOIN marketing_stages AS s ON s.person_id = k.person_id
         GROUP BY 1, 2, 3
        ON CONFLICT (day, affiliate_id, ad_id) DO UPDATE
           SET clicks = d.clicks + EXCLUDED.clicks, prospect_clicks = d.prospect_clicks + EXCLUDED.prospect_clicks;
        PERFORM marketing_credit(array_agg(DISTINCT person_id)) FROM new_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM marketing_credit(array_agg(DISTINCT person_id)) FROM old_rows;
        DELETE FROM marketing_clicks_daily AS d
         USING (SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date AS day, affiliate_id, ad_id FROM old_rows) AS o
         WHERE d.day = o.day AND d.affiliate_id = o.affiliate_id AND d.ad_id = o.ad_id AND d.clicks = 0;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_clicks_ins AFTER INSERT ON marketing_clicks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_clicks_count();
CREATE TRIGGER marketing_clicks_upd AFTER UPDATE ON marketing_clicks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_clicks_count();
CREATE TRIGGER marketing_clicks_del AFTER DELETE ON marketing_clicks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_clicks_count();

-- Moves persons' clicks into (sign 1) or out of (-1) the counts of clicks from prospects.
CREATE FUNCTION marketing_prospect_clicks(persons uuid[], sign integer) RETURNS void LANGUAGE sql AS $$
INSERT INTO marketing_clicks_daily AS d (day, affiliate_id, ad_id, clicks, prospect_clicks)
SELECT (occurred_at AT TIME ZONE 'UTC')::date, affiliate_id, ad_id, 0, sign * count(*)
  FROM marketing_clicks WHERE person_id = ANY(persons)
 GROUP BY 1, 2, 3
ON CONFLICT (day, affiliate_id, ad_id) DO UPDATE SET prospect_clicks = d.prospect_clicks + EXCLUDED.prospect_clicks
$$;

-- A person's stage times changed: their credits anew; who became (or stopped being, by a merge) a prospect moves
-- their clicks in or out of the prospect counts.
CREATE FUNCTION marketing_stages_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    persons uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(person_id) INTO persons FROM new_rows;
        PERFORM marketing_prospect_clicks(array_agg(person_id), 1) FROM new_rows WHERE prospect_at IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(person_id) INTO persons FROM old_rows;
        PERFORM marketing_prospect_clicks(array_agg(person_id), -1) FROM old_rows WHERE prospect_at IS NOT NULL;
    ELSE
        SELECT array_agg(n.person_id) INTO persons
          FROM new_rows AS n JOIN old_rows AS o ON o.person_id = n.person_id
         WHERE (n.lead_at, n.customer_at) IS DISTINCT FROM (o.lead_at, o.customer_at);
        PERFORM marketing_prospect_clicks(array_agg(n.person_id), 1)
           FROM new_rows AS n JOIN old_rows AS o ON o.person_id = n.person_id
          WHERE n.prospect_at IS NOT NULL AND o.prospect_at IS NULL;
        PERFORM marketing_prospect_clicks(array_agg(n.person_id), -1)
           FROM new_rows AS n JOIN old_rows AS o ON o.person_id = n.person_id
          WHERE n.prospect_at IS NULL AND o.prospect_at IS NOT NULL;
    END IF;
    PERFORM marketing_credit(persons);
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_stages_ins AFTER INSERT ON marketing_stages REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_stages_changed();
CREATE TRIGGER marketing_stages_upd AFTER UPDATE ON marketing_stages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_stages_changed();
CREATE TRIGGER marketing_stages_del AFTER DELETE ON marketing_stages REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_stages_changed();

-- Rebuild the given (person, month) baskets from purchases, taking their old pairs and buyers out first.
CREATE FUNCTION marketing_rebasket(persons uuid[], months date[]) RETURNS void LANGUAGE sql AS $$
INSERT INTO marketing_pairs AS p (month, a, b, together)
SELECT x.month, x.product_id, y.product_id, -count(*)
  FROM unnest(persons, months) AS k(person_id, month)
  JOIN marketing_baskets AS x ON x.person_id = k.person_id AND x.month = k.month
  JOIN marketing_baskets AS y ON y.person_id = k.person_id AND y.month = k.month
 GROUP BY 1, 2, 3
ON CONFLICT (month, a, b) DO UPDATE SET together = p.together + EXCLUDED.together;
INSERT INTO marketing_buyers AS b (month, buyers)
SELECT x.month, -count(DISTINCT x.person_id)
  FROM unnest(persons, months) AS k(person_id, month)
  JOIN marketing_baskets AS x ON x.person_id = k.person_id AND x.month = k.month
 GROUP BY 1
ON CONFLICT (month) DO UPDATE SET buyers = b.buyers + EXCLUDED.buyers;
DELETE FROM marketing_baskets AS x USING unnest(persons, months) AS k(person_id, month)
 WHERE x.person_id = k.person_id AND x.month = k.month;
INSERT INTO marketing_baskets (person_id, month, product_id)
SELECT DISTINCT u.person_id, k.month, u.product_id
  FROM unnest(persons, months) AS k(person_id, month)
  JOIN purchases AS u ON u.person_id = k.person_id
   AND u.purchased_on >= k.month AND u.purchased_on < k.month + interval '1 month';
INSERT INTO marketing_pairs AS p (month, a, b, together)
SELECT x.month, x.product_id, y.product_id, count(*)
  FROM unnest(persons, months) AS k(person_id, month)
  JOIN marketing_baskets AS x ON x.person_id = k.person_id AND x.month = k.month
  JOIN marketing_baskets AS y ON y.person_id = k.person_id AND y.month = k.month
 GROUP BY 1, 2, 3
ON CONFLICT (month, a, b) DO UPDATE SET together = p.together + EXCLUDED.together;
INSERT INTO marketing_buyers AS b (month, buyers)
SELECT x.month, count(DISTINCT x.person_id)
  FROM unnest(persons, months) AS k(person_id, month)
  JOIN marketing_baskets AS x ON x.person_id = k.person_id AND x.month = k.month
 GROUP BY 1
ON CONFLICT (month) DO UPDATE SET buyers = b.buyers + EXCLUDED.buyers;
DELETE FROM marketing_pairs AS p USING (SELECT DISTINCT month FROM unnest(months) AS m(month)) AS m
 WHERE p.month = m.month AND p.together = 0;
DELETE FROM marketing_buyers AS b USING (SELECT DISTINCT month FROM unnest(months) AS m(month)) AS m
 WHERE b.month = m.month AND b.buyers = 0;
$$;

-- Purchases changed: the baskets of the persons and months they touch, and those persons' credits.
CREATE FUNCTION marketing_purchases_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    persons uuid[];
    months date[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(person_id), array_agg(month) INTO persons, months
          FROM (SELECT DISTINCT person_id, date_trunc('month', purchased_on)::date AS month FROM new_rows) AS k;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(person_id), array_agg(month) INTO persons, months
          FROM (SELECT DISTINCT person_id, date_trunc('month', purchased_on)::date AS month FROM old_rows) AS k;
    ELSE  -- only what the reports read (an erasure empties special_instructions: nothing to do)
        SELECT array_agg(person_id), array_agg(month) INTO persons, months
          FROM (SELECT DISTINCT r.person_id, date_trunc('month', r.purchased_on)::date AS month
                  FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                 CROSS JOIN LATERAL (VALUES (n.person_id, n.purchased_on), (o.person_id, o.purchased_on))
                       AS r(person_id, purchased_on)
                 WHERE (n.person_id, n.product_id, n.purchased_on, n.quantity, n.price_paid)
                       IS DISTINCT FROM (o.person_id, o.product_id, o.purchased_on, o.quantity, o.price_paid)) AS k;
    END IF;
    IF persons IS NOT NULL THEN
        PERFORM marketing_rebasket(persons, months);
        PERFORM marketing_credit(ARRAY(SELECT DISTINCT unnest(persons)));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_purchases_ins AFTER INSERT ON purchases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_purchases_changed();
CREATE TRIGGER marketing_purchases_upd AFTER UPDATE ON purchases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_purchases_changed();
CREATE TRIGGER marketing_purchases_del AFTER DELETE ON purchases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_purchases_changed();

-- Existing history, once.
INSERT INTO marketing_clicks_daily (day, affiliate_id, ad_id, clicks, prospect_clicks)
SELECT (k.occurred_at AT TIME ZONE 'UTC')::date, k.affiliate_id, k.ad_id, count(*),
       count(*) FILTER (WHERE s.prospect_at IS NOT NULL)
  FROM marketing_clicks AS k LEFT JOIN marketing_stages AS s ON s.person_id = k.person_id
 GROUP BY 1, 2, 3;
DO $$
BEGIN
    PERFORM marketing_credit(ARRAY(SELECT person_id FROM marketing_stages UNION SELECT person_id FROM purchases));
    PERFORM marketing_rebasket(array_agg(person_id), array_agg(month))
       FROM (SELECT DISTINCT person_id, date_trunc('month', purchased_on)::date AS month FROM purchases) AS k;
END $$;
