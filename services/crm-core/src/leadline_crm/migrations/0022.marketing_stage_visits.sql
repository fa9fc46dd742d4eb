-- The funnel reads each converting person's first visit (when, source, campaign) from marketing_stages itself, so
-- it never reads marketing_visitors, which holds a row per visitor and grows with traffic (the benchmark's
-- 180-day funnel scanned a million visitors for 50,000 leads). The copy is kept exact: a stage row takes the visit
-- when it is made, and every change of a visitor's row (an earlier event arriving late, a merge) is passed on.
-- depends: 0021.web_orders
ALTER TABLE marketing_stages ADD COLUMN visited_at timestamptz, ADD COLUMN source text, ADD COLUMN campaign text;
UPDATE marketing_stages AS s SET visited_at = v.visited_at, source = v.source, campaign = v.campaign
  FROM marketing_visitors AS v WHERE v.person_id = s.person_id;

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
        UPDATE marketing_stages AS s SET visited_at = n.visited_at, source = n.source, campaign = n.campaign
          FROM new_rows AS n
         WHERE s.person_id = n.person_id
           AND (s.visited_at, s.source, s.campaign) IS DISTINCT FROM (n.visited_at, n.source, n.campaign);
    ELSE
        UPDATE marketing_stages AS s SET visited_at = NULL, source = NULL, campaign = NULL
          FROM old_rows AS o WHERE s.person_id = o.person_id;
    END IF;
    DELETE FROM marketing_visitors_daily WHERE visitors = 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION marketing_stage_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at, visited_at, source, campaign)
    SELECT m.person_id, m.lead_at, m.prospect_at, m.customer_at, v.visited_at, v.source, v.campaign
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
        INSERT INTO marketing_visitors AS v (person_id, visited_at, event_id, source, campaign)
        VALUES (NEW.person_id, old_visit.visited_at, old_visit.event_id, old_visit.source, old_visit.campaign)
        ON CONFLICT (person_id) DO UPDATE
           SET visited_at = EXCLUDED.visited_at, event_id = EXCLUDED.event_id, source = EXCLUDED.source,
               campaign = EXCLUDED.campaign
         WHERE (EXCLUDED.visited_at, EXCLUDED.event_id) < (v.visited_at, v.event_id);
    END IF;
    DELETE FROM marketing_stages WHERE person_id = NEW.old_id RETURNING * INTO old_stages;
    IF old_stages.person_id IS NOT NULL THEN
        INSERT INTO marketing_stages AS s (person_id, lead_at, prospect_at, customer_at, visited_at, source, campaign)
        SELECT NEW.person_id, old_stages.lead_at, old_stages.prospect_at, old_stages.customer_at,
               v.visited_at, v.source, v.campaign
          FROM (SELECT 1) AS one LEFT JOIN marketing_visitors AS v ON v.person_id = NEW.person_id
        ON CONFLICT (person_id) DO UPDATE
           SET lead_at = LEAST(s.lead_at, EXCLUDED.lead_at),
               prospect_at = LEAST(s.prospect_at, EXCLUDED.prospect_at),
               customer_at = LEAST(s.customer_at, EXCLUDED.customer_at);
    END IF;
    RETURN NULL;
END $$;
