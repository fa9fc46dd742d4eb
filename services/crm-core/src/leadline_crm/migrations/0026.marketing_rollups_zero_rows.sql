-- The daily rollups of 0023 dropped their emptied rows by joining the statement's transition table, which the
-- planner takes for one row: a nested loop over the whole daily table per old key (18 s for one batch of
-- 4,000 clicking persons in the benchmark). Emptied rows are now found through partial indexes that hold only
-- them, so dropping them costs what there is to drop.
-- depends: 0025.email_sends_time

CREATE INDEX marketing_credits_daily_empty ON marketing_credits_daily (lookback) WHERE touches = 0;
CREATE INDEX marketing_clicks_daily_empty ON marketing_clicks_daily (day) WHERE clicks = 0;
CREATE INDEX marketing_pairs_empty ON marketing_pairs (month) WHERE together = 0;
CREATE INDEX marketing_buyers_empty ON marketing_buyers (month) WHERE buyers = 0;

CREATE OR REPLACE FUNCTION marketing_credits_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
        DELETE FROM marketing_credits_daily WHERE touches = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_clicks_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
        DELETE FROM marketing_clicks_daily WHERE clicks = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_rebasket(persons uuid[], months date[]) RETURNS void LANGUAGE sql AS $$
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
DELETE FROM marketing_pairs WHERE together = 0;
DELETE FROM marketing_buyers WHERE buyers = 0;
$$;
