-- The web workspace (issue 12): a person's owner (the rep who works them) and next step, which the home page
-- lists per rep (overdue first); saved filters of the person list, per user.
-- depends: 0009.persons_title_address
ALTER TABLE persons
    ADD COLUMN owner_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN next_step     text,
    ADD COLUMN next_step_on  date;
CREATE INDEX persons_owner_next ON persons (owner_id, next_step_on) WHERE owner_id IS NOT NULL;
CREATE INDEX persons_next_step_on ON persons (next_step_on) WHERE next_step_on IS NOT NULL;

CREATE TABLE saved_filters (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_key    text NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    query       text NOT NULL CHECK (length(query) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_key, name)
);

-- Recent form submissions on the home page, newest first, without walking every page view.
CREATE INDEX touchpoints_forms ON touchpoints (occurred_at DESC) WHERE type = 'form_submit';

-- Searching the person list by any part of a name, company or email (ILIKE '%…%') through a trigram index
-- instead of reading every known person. Anonymous visitors have none of these, so the index holds known people
-- only (the predicate is people/queries.py KNOWN word for word). array_to_string is only STABLE in general; on
-- text[] it is immutable, which the wrapper states so it can be indexed.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE FUNCTION person_search_text(first_name text, last_name text, company text, emails text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(company, '')
                       || ' ' || array_to_string(emails, ' ')) $$;
CREATE INDEX persons_search ON persons USING gin (person_search_text(first_name, last_name, company, emails) public.gin_trgm_ops)
    WHERE identified OR stage <> 'anonymous' OR emails <> '{}' OR phones <> '{}' OR user_ids <> '{}'
          OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL;

-- The person list's filters and sorts (stage, country, source, owner, name, company, next step) read this index
-- alone: known people are a few percent of persons, scattered over the table, and reading their rows for every
-- page walked most of it. It replaces persons_known (same key and predicate). Only columns that ingestion seldom
-- changes are included (not last_seen or score), so its updates stay HOT.
DROP INDEX persons_known;
CREATE INDEX persons_known_list ON persons (person_id)
    INCLUDE (stage, country, source, owner_id, first_name, last_name, company, next_step_on)
    WHERE identified OR stage <> 'anonymous' OR emails <> '{}' OR phones <> '{}' OR user_ids <> '{}'
          OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL;
