"""SQL of ingestion: touchpoints, person facts, identity changes (merges, links, erasures)."""

from __future__ import annotations

# --- touchpoints and person facts (see touches.py) ---

# The batch's person and event ids come as one JSON array ($1): asyncpg encodes an array parameter element by
# element in Python (5,000 event ids: 2.8 ms of client CPU, 0.5 ms as JSON). ARRAY(...) keeps the index scans.
MERGED_IDS = """SELECT old_id, person_id FROM person_merges
 WHERE old_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)::uuid))"""

EXISTING_EVENTS = """SELECT event_id FROM touchpoints
 WHERE event_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)))"""

PERSON_FACTS = (
    "first_name",
    "last_name",
    "company",
    "industry",
    "company_size",
    "country",
    "region",
    "title",
    "street",
    "city",
    "postal_code",
    "gender",
    "source",
)
"""A person's text facts that events fill in: the value a person has is kept (a rep's, an earlier event's), a
new one only fills a gap. A new fact is one more name here (and a migration), not four more lines of SQL."""
IDENTIFIER_LISTS = ("emails", "phones", "user_ids")
"""A person's identifier arrays: every value the graph gave it, each once."""


def _set(template: str, columns: tuple[str, ...]) -> str:
    """SET lines, one per column: ``template`` with ``{c}`` for the column's name (fixed names, never input)."""
    return ",\n".join(f"       {template.format(c=c)}" for c in columns)


_ADD_IDS_OF_DELTA = (
    "    {c} = CASE WHEN x.{c} = '{{}}' THEN p.{c}"
    " ELSE ARRAY(SELECT DISTINCT v FROM unnest(p.{c} || x.{c}) AS v) END"
)
_ADD_IDS_OF_OLD = (
    "{c} = ARRAY(SELECT DISTINCT v FROM unnest(p.{c} ||"
    " (SELECT coalesce(array_agg(e), '{{}}') FROM old, unnest(old.{c}) AS e)) AS v)"
)

# One row per person touched by the batch's new events (ingest.PersonDelta.doc): creates the persons not seen
# before and folds the facts into the others. Both parts of the statement see the same snapshot, so the UPDATE
# never sees the rows the INSERT just created. $1: the objects as JSON text; $2: now; $3: half-life in days.
UPSERT_PERSON_DELTAS = f"""
WITH x AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS x(
        person_id uuid, first_seen timestamptz, last_seen timestamptz,
        {", ".join(f"{c} text[]" for c in IDENTIFIER_LISTS)},
        {", ".join(f"{c} text" for c in PERSON_FACTS)},
        identified boolean, clicked boolean, points double precision, days date[])
), ins AS (
    INSERT INTO persons (person_id, first_seen, last_seen, {", ".join(IDENTIFIER_LISTS + PERSON_FACTS)},
                         identified, clicked, score, score_at, visit_days, last_visit_day, updated_at)
    SELECT person_id, first_seen, last_seen, {", ".join(IDENTIFIER_LISTS + PERSON_FACTS)},
           identified, clicked, points, $2, cardinality(days), (SELECT max(d) FROM unnest(days) AS d), $2
      FROM x
    ON CONFLICT (person_id) DO NOTHING
    RETURNING person_id, stage, identified, score, clicked, rep_contacted, visit_days, purchases
), upd AS (
    UPDATE persons AS p
       SET first_seen = LEAST(p.first_seen, x.first_seen),
           last_seen = GREATEST(p.last_seen, x.last_seen),
{_set(_ADD_IDS_OF_DELTA, IDENTIFIER_LISTS)},
{_set("    {c} = COALESCE(p.{c}, x.{c})", PERSON_FACTS)},
           identified = p.identified OR x.identified,
           clicked = p.clicked OR x.clicked,
           score = CASE WHEN p.score_at IS NULL OR p.score = 0 THEN 0
                        ELSE p.score * power(0.5, extract(epoch FROM ($2 - p.score_at)) / 86400.0 / $3) END
                   + x.points,
           score_at = $2,
           visit_days = p.visit_days + CASE WHEN x.days = '{{}}' THEN 0 ELSE
                            (SELECT count(*) FROM unnest(x.days) AS d
                              WHERE p.last_visit_day IS NULL OR d > p.last_visit_day) END,
           last_visit_day = GREATEST(p.last_visit_day, (SELECT max(d) FROM unnest(x.days) AS d)),
           updated_at = $2
      FROM x
     WHERE p.person_id = x.person_id AND p.erased_at IS NULL
    RETURNING p.person_id, p.stage, p.identified, p.score, p.clicked, p.rep_contacted, p.visit_days, p.purchases
)
SELECT person_id::text AS person_id, stage, identified, score, clicked, rep_contacted, visit_days, purchases
  FROM ins
UNION ALL
SELECT person_id::text, stage, identified, score, clicked, rep_contacted, visit_days, purchases FROM upd
"""  # noqa: S608 (fixed names)

# --- identity changes (see identity.py) ---

CLAIM_CHANGE = """
INSERT INTO identity_changes (change_id, kind, person_id) VALUES ($1, $2, $3)
ON CONFLICT (change_id) DO NOTHING RETURNING change_id
"""

ENSURE_PERSON = """
INSERT INTO persons (person_id, first_seen, last_seen) VALUES ($1, $2, $2) ON CONFLICT (person_id) DO NOTHING
"""

REPOINT = [
    f"UPDATE {table} SET person_id = $1 WHERE person_id = ANY($2::uuid[])"  # noqa: S608 (fixed names)
    for table in (
        "touchpoints",
        "activities",
        "purchases",
        "feedback",
        "email_sends",
        "stage_transitions",
        "cases",
        "case_events",
        "service_contracts",
        "deals",
        "tasks",
    )
]

# Fold the merged persons' facts into the survivor ($1); rep-entered values of the survivor win.
FOLD_PERSONS = f"""
WITH old AS (SELECT * FROM persons WHERE person_id = ANY($2::uuid[]))
UPDATE persons AS p
   SET first_seen = LEAST(p.first_seen, (SELECT min(first_seen) FROM old)),
       last_seen = GREATEST(p.last_seen, (SELECT max(last_seen) FROM old)),
{_set(_ADD_IDS_OF_OLD, IDENTIFIER_LISTS)},
{_set("{c} = COALESCE(p.{c}, (SELECT max({c}) FROM old))", (*PERSON_FACTS, "age_band"))},
       attributes = (SELECT coalesce(jsonb_object_agg(k, v), '{{}}') FROM old, jsonb_each(old.attributes) AS a(k, v))
                    || p.attributes,
       identified = p.identified OR coalesce((SELECT bool_or(identified) FROM old), false),
       clicked = p.clicked OR coalesce((SELECT bool_or(clicked) FROM old), false),
       rep_contacted = p.rep_contacted OR coalesce((SELECT bool_or(rep_contacted) FROM old), false),
       updated_at = now()
 WHERE p.person_id = $1
"""  # noqa: S608 (fixed names)

# Recompute what can be recomputed exactly from the (now re-pointed) history; a bot's, link scanner's or image
# proxy's touchpoints (automated) never count. $2: now; $3: half-life.
RECOMPUTE_PERSON = """
UPDATE persons AS p
   SET score = coalesce((
           SELECT sum(r.points * power(0.5, greatest(extract(epoch FROM ($2 - t.occurred_at)), 0) / 86400.0 / $3))
             FROM touchpoints AS t
             JOIN score_rules AS r
               ON r.active AND r.event_type = t.type
              AND (r.url_contains IS NULL OR strpos(coalesce(t.url, ''), r.url_contains) > 0)
            WHERE t.person_id = $1 AND NOT t.automated), 0),
       score_at = $2,
       visit_days = (SELECT count(DISTINCT (occurred_at AT TIME ZONE 'UTC')::date) FROM touchpoints
                      WHERE person_id = $1 AND type = 'page_view' AND NOT automated),
       last_visit_day = (SELECT max((occurred_at AT TIME ZONE 'UTC')::date) FROM touchpoints
                          WHERE person_id = $1 AND type = 'page_view' AND NOT automated),
       clicked = p.clicked OR EXISTS (SELECT 1 FROM touchpoints WHERE person_id = $1
                                       AND type IN ('ad_click', 'link_click') AND NOT automated),
       rep_contacted = p.rep_contacted OR EXISTS (SELECT 1 FROM activities WHERE person_id = $1
                                                   AND kind IN ('site_visit', 'phone_call', 'meeting')),
       purchases = (SELECT count(*) FROM purchases WHERE person_id = $1)
 WHERE p.person_id = $1
"""

DROP_MERGED = "DELETE FROM persons WHERE person_id = ANY($1::uuid[]) AND person_id <> $2"

RECORD_MERGES = """
WITH chain AS (UPDATE person_merges SET person_id = $1 WHERE person_id = ANY($2::uuid[]))
INSERT INTO person_merges (old_id, person_id, change_id)
SELECT old, $1, $3 FROM unnest($2::uuid[]) AS old
ON CONFLICT (old_id) DO UPDATE SET person_id = EXCLUDED.person_id, change_id = EXCLUDED.change_id
"""

LINK_IDENTIFIER = """
UPDATE persons
   SET emails = CASE WHEN $2 = 'email' AND NOT $3 = ANY(emails) THEN emails || $3 ELSE emails END,
       phones = CASE WHEN $2 = 'phone' AND NOT $3 = ANY(phones) THEN phones || $3 ELSE phones END,
       user_ids = CASE WHEN $2 = 'user_id' AND NOT $3 = ANY(user_ids) THEN user_ids || $3 ELSE user_ids END,
       identified = identified OR $2 IN ('email', 'phone', 'user_id', 'crm_contact_id'),
       updated_at = now()
 WHERE person_id = $1 AND erased_at IS NULL
"""

# Erasure: the person's personal data goes; the anonymous facts (counts, stage, purchases' amounts) stay.
ERASE_PERSON = """UPDATE persons SET first_name = NULL, last_name = NULL, emails = '{}', phones = '{}', user_ids = '{}',
              company = NULL, country = NULL, region = NULL, age_band = NULL, gender = NULL, industry = NULL,
              company_size = NULL, title = NULL, street = NULL, city = NULL, postal_code = NULL,
              attributes = '{}', erased_at = $2, updated_at = $2
        WHERE person_id = $1"""

SCRUB_HISTORY = [
    """UPDATE touchpoints SET anon_id = NULL, url = NULL,
              event = ((event::jsonb - 'ids' - 'properties' - 'form' - 'anon_id' - 'link')
                       || jsonb_build_object('context', coalesce(event::jsonb->'context', '{}') - 'ip' - 'url'
                                             - 'referrer' - 'user_agent' - 'title'))::text
        WHERE person_id = $1""",
    "UPDATE activities SET notes = NULL, outcome = NULL WHERE person_id = $1",
    "UPDATE feedback SET text = NULL WHERE person_id = $1",
    "UPDATE purchases SET special_instructions = '' WHERE person_id = $1",
    # What agents wrote about the person's cases; the cases, numbers and status history stay for the counts.
    "UPDATE cases SET subject = '(erased)', description = '(erased)' WHERE person_id = $1",
    "UPDATE case_comments SET body = '(erased)' WHERE case_id IN (SELECT id FROM cases WHERE person_id = $1)",
    # Deals and tasks about the person may name them; their amounts, stages and dates stay (issue 14).
    "UPDATE deals SET title = '(erased)', close_reason = NULL WHERE person_id = $1",
    "UPDATE tasks SET title = '(erased)', notes = NULL WHERE person_id = $1",
]
