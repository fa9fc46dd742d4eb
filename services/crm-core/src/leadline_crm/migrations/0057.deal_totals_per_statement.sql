-- deal_totals (0042) kept by statement-level triggers instead of one trigger call per row (issue 15): a CSV import
-- writes 5,000 deals in one INSERT … SELECT, and the per-row trigger's upsert was most of its time (3,870 rows/s).
-- Each trigger sums the statement's transition tables (the rows as they were, -1 and -amount; as they are, +1 and
-- +amount) per (pipeline, stage, owner, currency) and applies the sums in one upsert, in key order, so two
-- statements moving deals in opposite directions still cannot deadlock. One deal's change is one statement as
-- before. An UPDATE trigger with transition tables cannot name columns, so every update of deals runs it; the
-- keys whose sums are zero (a title or date changed, nothing counted) are left alone, so it writes nothing then.
-- depends: 0043.imports
DROP TRIGGER deals_totals ON deals;
DROP FUNCTION deal_totals_apply();

CREATE FUNCTION deal_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deal_totals AS t
    SELECT pipeline_id, stage_id, coalesce(owner_id, '00000000-0000-0000-0000-000000000000'), currency, count(*),
           sum(amount)
      FROM deal_totals_new
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (pipeline_id, stage_id, owner_key, currency)
    DO UPDATE SET deals = t.deals + EXCLUDED.deals, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END $$;

CREATE FUNCTION deal_totals_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deal_totals AS t
    SELECT pipeline_id, stage_id, coalesce(owner_id, '00000000-0000-0000-0000-000000000000'), currency, -count(*),
           -sum(amount)
      FROM deal_totals_old
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (pipeline_id, stage_id, owner_key, currency)
    DO UPDATE SET deals = t.deals + EXCLUDED.deals, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END $$;

CREATE FUNCTION deal_totals_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deal_totals AS t
    SELECT p, s, o, c, sum(n), sum(a)
      FROM (SELECT pipeline_id, stage_id, coalesce(owner_id, '00000000-0000-0000-0000-000000000000'), currency,
                   -1, -amount FROM deal_totals_old
            UNION ALL
            SELECT pipeline_id, stage_id, coalesce(owner_id, '00000000-0000-0000-0000-000000000000'), currency,
                   1, amount FROM deal_totals_new) AS v(p, s, o, c, n, a)
     GROUP BY p, s, o, c
    HAVING sum(n) <> 0 OR sum(a) <> 0
     ORDER BY p, s, o, c
    ON CONFLICT (pipeline_id, stage_id, owner_key, currency)
    DO UPDATE SET deals = t.deals + EXCLUDED.deals, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END $$;

CREATE TRIGGER deals_totals_insert AFTER INSERT ON deals REFERENCING NEW TABLE AS deal_totals_new
    FOR EACH STATEMENT EXECUTE FUNCTION deal_totals_add();
CREATE TRIGGER deals_totals_delete AFTER DELETE ON deals REFERENCING OLD TABLE AS deal_totals_old
    FOR EACH STATEMENT EXECUTE FUNCTION deal_totals_remove();
CREATE TRIGGER deals_totals_update AFTER UPDATE ON deals
    REFERENCING OLD TABLE AS deal_totals_old NEW TABLE AS deal_totals_new
    FOR EACH STATEMENT EXECUTE FUNCTION deal_totals_move();
