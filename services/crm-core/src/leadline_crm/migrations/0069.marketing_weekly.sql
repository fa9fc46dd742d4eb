-- The forecast's history per week (issue 13): new leads (marketing_stages.lead_at) and sales (purchases) per ISO
-- week, so the forecast reads at most 104 rows instead of every lead and purchase of two years (the benchmark's
-- forecast took 11.9 ms at 1M touchpoints and 129 ms at 10M, all of it grouping stage rows and purchases).
-- * marketing_weekly: per Monday, the persons who first became leads that week, the purchase rows and their
--   revenue (quantity x price paid). Kept by statement triggers on marketing_stages and purchases (transition
--   tables: one aggregate per statement, only weeks whose figures change are written); a week with neither leads
--   nor purchases has no row. It equals queries.RAW_WEEKLY, which the tests hold it to.
-- depends: 0065.marketing_consent

CREATE TABLE marketing_weekly (
    week       date PRIMARY KEY,
    leads      bigint NOT NULL,
    purchases  bigint NOT NULL,
    revenue    numeric NOT NULL
);

INSERT INTO marketing_weekly (week, leads, purchases, revenue)
SELECT week, sum(leads), sum(purchases), sum(revenue)
  FROM (SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, 1 AS leads, 0 AS purchases,
               0 AS revenue
          FROM marketing_stages WHERE lead_at IS NOT NULL
        UNION ALL
        SELECT date_trunc('week', purchased_on::timestamp)::date, 0, 1, quantity * price_paid FROM purchases) AS x
 GROUP BY week;

CREATE FUNCTION marketing_weekly_add(changes jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO marketing_weekly AS w (week, leads, purchases, revenue)
    SELECT (c ->> 'week')::date, sum((c ->> 'leads')::bigint), sum((c ->> 'purchases')::bigint),
           sum((c ->> 'revenue')::numeric)
      FROM jsonb_array_elements(changes) AS c GROUP BY 1
    HAVING sum((c ->> 'leads')::bigint) <> 0 OR sum((c ->> 'purchases')::bigint) <> 0
        OR sum((c ->> 'revenue')::numeric) <> 0
    ON CONFLICT (week) DO UPDATE
       SET leads = w.leads + EXCLUDED.leads, purchases = w.purchases + EXCLUDED.purchases,
           revenue = w.revenue + EXCLUDED.revenue;
    DELETE FROM marketing_weekly WHERE leads = 0 AND purchases = 0;
$$;

CREATE FUNCTION marketing_weekly_leads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', n, 'purchases', 0, 'revenue', 0)) INTO changes
          FROM (SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, count(*) AS n
                  FROM new_rows WHERE lead_at IS NOT NULL GROUP BY 1) AS x;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', -n, 'purchases', 0, 'revenue', 0)) INTO changes
          FROM (SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, count(*) AS n
                  FROM old_rows WHERE lead_at IS NOT NULL GROUP BY 1) AS x;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', n, 'purchases', 0, 'revenue', 0)) INTO changes
          FROM (SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, sum(d) AS n
                  FROM (SELECT lead_at, -1 AS d FROM old_rows WHERE lead_at IS NOT NULL
                        UNION ALL
                        SELECT lead_at, 1 FROM new_rows WHERE lead_at IS NOT NULL) AS m
                 GROUP BY 1 HAVING sum(d) <> 0) AS x;
    END IF;
    IF changes IS NOT NULL THEN
        PERFORM marketing_weekly_add(changes);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_weekly_leads_ins AFTER INSERT ON marketing_stages REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_leads();
CREATE TRIGGER marketing_weekly_leads_upd AFTER UPDATE ON marketing_stages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_leads();
CREATE TRIGGER marketing_weekly_leads_del AFTER DELETE ON marketing_stages REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_leads();

CREATE FUNCTION marketing_weekly_sales() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', 0, 'purchases', n, 'revenue', r)) INTO changes
          FROM (SELECT date_trunc('week', purchased_on::timestamp)::date AS week, count(*) AS n,
                       sum(quantity * price_paid) AS r
                  FROM new_rows GROUP BY 1) AS x;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', 0, 'purchases', -n, 'revenue', -r)) INTO changes
          FROM (SELECT date_trunc('week', purchased_on::timestamp)::date AS week, count(*) AS n,
                       sum(quantity * price_paid) AS r
                  FROM old_rows GROUP BY 1) AS x;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('week', week, 'leads', 0, 'purchases', n, 'revenue', r)) INTO changes
          FROM (SELECT date_trunc('week', purchased_on::timestamp)::date AS week, sum(d) AS n, sum(d * amount) AS r
                  FROM (SELECT purchased_on, -1 AS d, quantity * price_paid AS amount FROM old_rows
                        UNION ALL
                        SELECT purchased_on, 1, quantity * price_paid FROM new_rows) AS m
                 GROUP BY 1) AS x;
    END IF;
    IF changes IS NOT NULL THEN
        PERFORM marketing_weekly_add(changes);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER marketing_weekly_sales_ins AFTER INSERT ON purchases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_sales();
CREATE TRIGGER marketing_weekly_sales_upd AFTER UPDATE ON purchases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_sales();
CREATE TRIGGER marketing_weekly_sales_del AFTER DELETE ON purchases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketing_weekly_sales();
