-- The service report's daily rollup (issue 14): the report over two years sorted a million cases for its medians
-- (2.2 s on a quiet machine, 9.5 s loaded); it now sums rows kept per month and per day, product and type.
--
-- * cases.product_id: the case's product as the report counts it (its purchase's, else its contract's), kept by a
--   trigger when a case is written and when a purchase's or a contract's product changes, so the rollup's key is
--   on the case row. Not a foreign key: the purchase or contract it is copied from already holds the product.
-- * service_report_days: per day (the case's creation, UTC), product and type, and again per month: cases, open
--   ones (new, open or waiting), settled breaches (first response, or resolution without one, after the due time),
--   and for the first response and the resolution a count, the sum of seconds and a histogram of durations. A
--   breach that depends on the clock (nothing yet, past due) is not stored: the report counts those live from
--   cases_unanswered. The report reads whole months from the month rows and the days around them from the day
--   rows, so two years cost ~85 rows per product and type instead of 730.
-- * The histogram's buckets (service_report_edges()): under a minute, then eight per doubling from one minute to a
--   year (each 9.05 % wider than the one before), then 397 days or more. The report's medians are estimated inside
--   the bucket that holds the middle case, so they are off by less than one bucket's width: under 9.1 % of the
--   true value, under a minute below a minute (service/histogram.py).
-- * Statement-level triggers with transition tables (as deal_totals, 0057): one upsert per statement, the keys in
--   order, so bulk writes (an import, the bench's seed) cost one aggregate and two statements touching the same
--   days cannot deadlock. An update that changes nothing counted (a comment's updated_at, an erasure's texts)
--   writes nothing.
-- depends: 0032.support_forms 0050.automation

ALTER TABLE cases ADD COLUMN product_id uuid;
UPDATE cases c SET product_id = coalesce(
    (SELECT pu.product_id FROM purchases pu WHERE pu.id = c.purchase_id),
    (SELECT sc.product_id FROM service_contracts sc WHERE sc.id = c.contract_id))
 WHERE c.purchase_id IS NOT NULL OR c.contract_id IS NOT NULL;
-- A purchase's or contract's product change re-points its cases through these.
CREATE INDEX cases_purchase ON cases (purchase_id) WHERE purchase_id IS NOT NULL;
CREATE INDEX cases_contract ON cases (contract_id) WHERE contract_id IS NOT NULL;
-- The breaches the clock makes: cases neither answered nor resolved (a small set: the unanswered backlog).
CREATE INDEX cases_unanswered ON cases (created_at) WHERE first_response_at IS NULL AND resolved_at IS NULL;

-- The histogram's bucket edges in seconds: 60 * 2^(k/8) for k = 0..153 (one minute to 397 days).
-- IMMUTABLE without arguments: the planner folds it to a constant once per statement.
CREATE FUNCTION service_report_edges() RETURNS double precision[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(60 * power(2::float8, k / 8.0::float8) ORDER BY k) FROM generate_series(0, 153) AS k
$$;

-- A duration's bucket, 1-based for the arrays: 1 under a minute (and negative clocks), 155 from 397 days.
CREATE FUNCTION service_report_bucket(seconds double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(seconds, service_report_edges()) + 1
$$;

-- The histogram of a group: per bucket, the sum of the signs of the durations in it. The caller leaves out the
-- cases without one: an element of an array holding NULLs is found by walking it, which made this quadratic.
-- PL/pgSQL, as the functions below: its plans are kept per session, where a SQL function with a FROM is planned
-- again on every statement that calls it (a case's change cost 12 ms more that way, 2.5 ms like this).
CREATE FUNCTION service_report_hist(buckets integer[], signs integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    counts integer[] := array_fill(0, ARRAY[array_length(service_report_edges(), 1) + 1]);
BEGIN
    FOR i IN 1 .. coalesce(array_length(buckets, 1), 0) LOOP
        counts[buckets[i]] := counts[buckets[i]] + signs[i];
    END LOOP;
    RETURN counts;
END $$;

CREATE FUNCTION service_report_hist_add(a integer[], b integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    FOR i IN 1 .. array_length(b, 1) LOOP
        IF b[i] <> 0 THEN
            a[i] := a[i] + b[i];
        END IF;
    END LOOP;
    RETURN a;
END $$;

CREATE TABLE service_report_days (
    period           text NOT NULL CHECK (period IN ('day', 'month')),
    starts_on        date NOT NULL,          -- the day, or the month's first day
    product_id       uuid,
    type             text NOT NULL,
    cases            integer NOT NULL,
    open             integer NOT NULL,
    breaches         integer NOT NULL,       -- settled ones; the report adds the clock's from cases_unanswered
    answered         integer NOT NULL,       -- cases with a first response
    answer_seconds   numeric NOT NULL,       -- their seconds from creation to it, summed
    answer_hist      integer[] NOT NULL,     -- and per bucket of service_report_edges()
    resolved         integer NOT NULL,
    resolve_seconds  numeric NOT NULL,
    resolve_hist     integer[] NOT NULL,
    CONSTRAINT service_report_days_key UNIQUE NULLS NOT DISTINCT (period, starts_on, product_id, type)
);

-- Adds (sign 1) or takes away (sign -1) cases, given column by column, to or from their days' and months' rows.
CREATE FUNCTION service_report_apply(
    created timestamptz[], product uuid[], kind text[], status text[], due timestamptz[], answered timestamptz[],
    resolved timestamptz[], signs integer[]
) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO service_report_days AS t
    SELECT * FROM (
        SELECT k.period, k.starts_on, product, kind, sum(sign)::int, sum(sign * open::int)::int,
               sum(sign * breach::int)::int,
               sum(sign * (answer IS NOT NULL)::int)::int, coalesce(sum(sign * answer), 0),
               service_report_hist(array_agg(service_report_bucket(answer::float8)) FILTER (WHERE answer IS NOT NULL),
                                   array_agg(sign) FILTER (WHERE answer IS NOT NULL)),
               sum(sign * (resolve IS NOT NULL)::int)::int, coalesce(sum(sign * resolve), 0),
               service_report_hist(array_agg(service_report_bucket(resolve::float8)) FILTER (WHERE resolve IS NOT NULL),
                                   array_agg(sign) FILTER (WHERE resolve IS NOT NULL))
          FROM (SELECT (u.created AT TIME ZONE 'UTC')::date AS day, u.product, u.kind, u.sign,
                       u.status IN ('new', 'open', 'waiting') AS open,
                       coalesce(u.due < coalesce(u.answered, u.resolved), false) AS breach,
                       extract(epoch FROM u.answered - u.created) AS answer,
                       extract(epoch FROM u.resolved - u.created) AS resolve
                  FROM unnest(created, product, kind, status, due, answered, resolved, signs)
                       AS u(created, product, kind, status, due, answered, resolved, sign)) AS c
         CROSS JOIN LATERAL (VALUES ('day', c.day), ('month', date_trunc('month', c.day)::date))
                            AS k(period, starts_on)
         GROUP BY k.period, k.starts_on, product, kind
    ) AS d(period, starts_on, product, kind, cases, open, breaches, answered, answer_seconds, answer_hist, resolved,
           resolve_seconds, resolve_hist)
     WHERE cases <> 0 OR open <> 0 OR breaches <> 0 OR answered <> 0 OR answer_seconds <> 0 OR resolved <> 0
        OR resolve_seconds <> 0 OR 0 <> ANY (answer_hist) OR 0 <> ANY (resolve_hist)
     ORDER BY period, starts_on, product, kind
    ON CONFLICT ON CONSTRAINT service_report_days_key DO UPDATE SET
        cases = t.cases + EXCLUDED.cases, open = t.open + EXCLUDED.open, breaches = t.breaches + EXCLUDED.breaches,
        answered = t.answered + EXCLUDED.answered, answer_seconds = t.answer_seconds + EXCLUDED.answer_seconds,
        answer_hist = service_report_hist_add(t.answer_hist, EXCLUDED.answer_hist),
        resolved = t.resolved + EXCLUDED.resolved, resolve_seconds = t.resolve_seconds + EXCLUDED.resolve_seconds,
        resolve_hist = service_report_hist_add(t.resolve_hist, EXCLUDED.resolve_hist);
END $$;

-- An insert's rows count in (1), a delete's out (-1): both triggers name their transition table
-- service_report_rows (PL/pgSQL keeps a function's plans per trigger, so each plans against its own).
CREATE FUNCTION service_report_cases_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM service_report_apply(array_agg(created_at), array_agg(product_id), array_agg(type), array_agg(status),
                                 array_agg(due_at), array_agg(first_response_at), array_agg(resolved_at),
                                 array_agg(CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END))
       FROM service_report_rows HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION service_report_cases_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM service_report_apply(array_agg(created_at), array_agg(product_id), array_agg(type), array_agg(status),
                                 array_agg(due_at), array_agg(first_response_at), array_agg(resolved_at),
                                 array_agg(sign))
       FROM (SELECT created_at, product_id, type, status, due_at, first_response_at, resolved_at, -1 AS sign
               FROM service_report_old
             UNION ALL
             SELECT created_at, product_id, type, status, due_at, first_response_at, resolved_at, 1
               FROM service_report_new) AS c
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER cases_report_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS service_report_rows
    FOR EACH STATEMENT EXECUTE FUNCTION service_report_cases_added_or_removed();
CREATE TRIGGER cases_report_delete AFTER DELETE ON cases REFERENCING OLD TABLE AS service_report_rows
    FOR EACH STATEMENT EXECUTE FUNCTION service_report_cases_added_or_removed();
CREATE TRIGGER cases_report_update AFTER UPDATE ON cases
    REFERENCING OLD TABLE AS service_report_old NEW TABLE AS service_report_new
    FOR EACH STATEMENT EXECUTE FUNCTION service_report_cases_changed();

-- The case's product, copied when it is written (most cases name neither a purchase nor a contract).
CREATE FUNCTION service_report_case_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.product_id := coalesce((SELECT product_id FROM purchases WHERE id = NEW.purchase_id),
                               (SELECT product_id FROM service_contracts WHERE id = NEW.contract_id));
    RETURN NEW;
END $$;
CREATE TRIGGER cases_product_insert BEFORE INSERT ON cases FOR EACH ROW
    WHEN (NEW.purchase_id IS NOT NULL OR NEW.contract_id IS NOT NULL)
    EXECUTE FUNCTION service_report_case_product();
CREATE TRIGGER cases_product_update BEFORE UPDATE OF purchase_id, contract_id ON cases FOR EACH ROW
    EXECUTE FUNCTION service_report_case_product();

-- A purchase's or contract's new product moves its cases (and their counts) to it.
CREATE FUNCTION service_report_purchase_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cases SET product_id = NEW.product_id WHERE purchase_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER purchases_case_product AFTER UPDATE OF product_id ON purchases FOR EACH ROW
    WHEN (OLD.product_id IS DISTINCT FROM NEW.product_id) EXECUTE FUNCTION service_report_purchase_product();

CREATE FUNCTION service_report_contract_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cases SET product_id = NEW.product_id WHERE contract_id = NEW.id AND purchase_id IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER contracts_case_product AFTER UPDATE OF product_id ON service_contracts FOR EACH ROW
    WHEN (OLD.product_id IS DISTINCT FROM NEW.product_id) EXECUTE FUNCTION service_report_contract_product();

-- The cases there are already.
DO $$
BEGIN
    PERFORM service_report_apply(array_agg(created_at), array_agg(product_id), array_agg(type), array_agg(status),
                                 array_agg(due_at), array_agg(first_response_at), array_agg(resolved_at),
                                 array_agg(1))
       FROM cases HAVING count(*) > 0;
END $$;
