-- Marketing reports honour a refused analytics consent (issue 13; people/consent.py keeps it on persons.consent).
-- A person who said no to analytics (analytics.granted false; never stated is not a refusal) is left out of what
-- ties their own touches to their own conversions or profile: their conversions are credited to no ad, e-mail or
-- source (ads, affiliates, emails, the funnel by source or campaign), and demographics and next-product
-- suggestions leave them out (marketing/queries.py, at read time: both read the person's row already). Counts of
-- events and stage moves (clicks, impressions, opens, visitors, the funnel's totals, products) still hold them:
-- they say nothing of a person.
-- * marketing_consenting(persons): the persons among them who did not refuse; the credit functions of 0063 and
--   0064 now compute rows for those only (renamed *_all, wrapped), and drop the others' rows.
-- * A change of a person's analytics consent computes their credits anew (a trigger on persons, only when the
--   analytics flag changes), so the kept rollups equal the raw computation, which leaves them out as well.
-- depends: 0064.marketing_arrivals 0033.person_consent

CREATE INDEX persons_analytics_refused ON persons (person_id) WHERE (consent -> 'analytics' ->> 'granted') = 'false';

CREATE FUNCTION marketing_consenting(persons uuid[]) RETURNS uuid[] LANGUAGE sql STABLE AS $$
SELECT coalesce(array_agg(p.id), '{}') FROM unnest(persons) AS p(id)
 WHERE NOT EXISTS (SELECT 1 FROM persons AS x
                    WHERE x.person_id = p.id AND (x.consent -> 'analytics' ->> 'granted') = 'false')
$$;

ALTER FUNCTION marketing_weights(uuid[], text) RENAME TO marketing_weights_all;
CREATE FUNCTION marketing_weights(persons uuid[], channel text)
RETURNS TABLE (person_id uuid, kind integer, ref text, day date, lookback integer, affiliate_id text, ad_id text,
               w_first numeric, w_last numeric, w_linear numeric, w_position numeric, lead integer,
               customer integer, revenue numeric)
LANGUAGE sql STABLE AS $$ SELECT * FROM marketing_weights_all(marketing_consenting(persons), channel) $$;

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
