"""SQL of the people domain: persons, their search, leads, the timeline and a person's raw events."""

from __future__ import annotations

EVENTS_PAGE = """
SELECT event_id, person_id::text AS person_id, occurred_at, event
  FROM touchpoints
 WHERE ({column} = $1)
   AND ($2::timestamptz IS NULL OR (occurred_at, event_id) < ($2, $3))
 ORDER BY occurred_at DESC, event_id DESC
 LIMIT $4
"""

PERSON_COLUMNS = """
person_id AS id, first_name, last_name, emails, phones, user_ids, company, title, street, city, postal_code,
country, region, age_band, gender, industry, company_size, source, attributes, stage, stage_at,
score * power(0.5, greatest(extract(epoch FROM (now() - coalesce(score_at, now()))), 0) / 86400.0
              / (SELECT half_life_days FROM scoring)) AS score,
first_seen, last_seen, created_at, updated_at, erased_at, owner_id, next_step, next_step_on
"""

SURVIVOR = "SELECT person_id FROM person_merges WHERE old_id = $1"

PERSON = f"SELECT {PERSON_COLUMNS} FROM persons WHERE person_id = $1"  # noqa: S608

# A person the CRM knows something about: identified, past the anonymous stage, or holding an email, phone, user id,
# name or company. Word for word the predicate of the partial indexes persons_known_list and persons_search
# (migration 0012), which the planner uses only for a query implying it: nearly every person is an anonymous visitor.
KNOWN = """(identified OR stage <> 'anonymous' OR emails <> '{}' OR phones <> '{}' OR user_ids <> '{}'
          OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL)"""


def _persons_page(scope: str) -> str:
    """The person search within ``scope`` (SQL). $1 email, $2 phone, $3 stage, $4 q (ILIKE pattern),
    $5 cursor (person id), $6 limit."""
    return f"""
SELECT {PERSON_COLUMNS} FROM persons
 WHERE {scope}
   AND ($1::text IS NULL OR emails @> ARRAY[$1::text])
   AND ($2::text IS NULL OR phones @> ARRAY[$2::text])
   AND ($3::text IS NULL OR stage = $3)
   AND ($4::text IS NULL OR coalesce(first_name, '') || ' ' || coalesce(last_name, '') ILIKE $4
        OR company ILIKE $4 OR array_to_string(emails, ' ') ILIKE $4)
   AND ($5::uuid IS NULL OR person_id < $5)
 ORDER BY person_id DESC
 LIMIT $6
"""  # noqa: S608


PERSONS_PAGE = _persons_page("true")  # anonymous visitors included
KNOWN_PERSONS_PAGE = _persons_page(KNOWN)  # the default list

DUPLICATE = """
SELECT person_id FROM persons
 WHERE ($1::text IS NOT NULL AND emails @> ARRAY[$1::text]) OR ($2::text IS NOT NULL AND phones @> ARRAY[$2::text])
 ORDER BY created_at LIMIT 1
"""

# Which of these emails ($2) and phones ($3) another person than $1 already holds (through the GIN indexes).
HELD_BY_OTHERS = """
SELECT ARRAY(SELECT DISTINCT e FROM persons, unnest(emails) AS e
              WHERE person_id <> $1 AND emails && $2::text[] AND e = ANY($2::text[])) AS emails,
       ARRAY(SELECT DISTINCT v FROM persons, unnest(phones) AS v
              WHERE person_id <> $1 AND phones && $3::text[] AND v = ANY($3::text[])) AS phones
"""

INSERT_LEAD = """
INSERT INTO persons (person_id, first_seen, last_seen, first_name, last_name, emails, phones, company, country,
                     region, age_band, gender, industry, company_size, source, attributes, identified, stage,
                     stage_at, score_at, title, street, city, postal_code, owner_id, next_step, next_step_on)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::text::jsonb, true, 'lead', $2, $2,
        $16, $17, $18, $19, $20::text::uuid, $21, $22::text::date)
"""

LOG_TRANSITION = """
INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, cause_user, reason)
VALUES ($1, $2, $3, $4, $5, $6)
"""

FIELD_DEFINITIONS = "SELECT name, type, choices, required FROM field_definitions"

# $1 person, $2 cursor time, $3 cursor key, $4 limit. Each source is read through its (person, time) index.
TIMELINE = """
SELECT * FROM (
    (SELECT occurred_at AS at, event_id AS key, 'touchpoint' AS kind,
            jsonb_build_object('type', type, 'source', source, 'url', url, 'anon_id', anon_id,
                               'form', j.ev->'form', 'link', j.ev->'link', 'affiliate', j.ev->'affiliate',
                               'campaign', j.ev->'context'->'campaign', 'automated', automated,
                               'bot', j.ev->'bot') AS data
       FROM touchpoints CROSS JOIN LATERAL (SELECT event::json AS ev) AS j
      WHERE person_id = $1 AND ($2::timestamptz IS NULL OR (occurred_at, event_id) < ($2, $3))
      ORDER BY occurred_at DESC, event_id DESC LIMIT $4)
    UNION ALL
    (SELECT at, id::text, 'activity',
            jsonb_build_object('kind', kind, 'rep_id', rep_id, 'outcome', outcome, 'notes', notes)
       FROM activities WHERE person_id = $1 AND ($2::timestamptz IS NULL OR (at, id::text) < ($2, $3))
      ORDER BY at DESC, id::text DESC LIMIT $4)
    UNION ALL
    (SELECT created_at, id::text, 'purchase',
            jsonb_build_object('product_id', product_id, 'quantity', quantity, 'price_paid', price_paid,
                               'purchased_on', purchased_on, 'sales_rep', sales_rep)
       FROM purchases WHERE person_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id::text) < ($2, $3))
      ORDER BY created_at DESC, id::text DESC LIMIT $4)
    UNION ALL
    (SELECT created_at, id::text, 'feedback', jsonb_build_object('rating', rating, 'text', text)
       FROM feedback WHERE person_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id::text) < ($2, $3))
      ORDER BY created_at DESC, id::text DESC LIMIT $4)
    UNION ALL
    (SELECT at, 's' || id::text, 'stage',
            jsonb_build_object('from', from_stage, 'to', to_stage, 'cause_event_id', cause_event_id,
                               'cause_user', cause_user, 'reason', reason)
       FROM stage_transitions
      WHERE person_id = $1 AND ($2::timestamptz IS NULL OR (at, 's' || id::text) < ($2, $3))
      ORDER BY at DESC, 's' || id::text DESC LIMIT $4)
    UNION ALL
    (SELECT e.at, 'c' || e.id::text, 'case',
            jsonb_build_object('tracking_number', c.tracking_number, 'subject', c.subject, 'type', c.type,
                               'event', e.kind, 'from', e.from_status, 'to', e.to_status, 'actor', e.actor)
       FROM case_events e JOIN cases c ON c.id = e.case_id
      WHERE e.person_id = $1 AND ($2::timestamptz IS NULL OR (e.at, 'c' || e.id::text) < ($2, $3))
      ORDER BY e.at DESC, 'c' || e.id::text DESC LIMIT $4)
    UNION ALL
    (SELECT h.at, 'd' || h.id::text, 'deal',
            jsonb_build_object('deal', d.title, 'from', h.from_stage, 'to', h.to_stage, 'reason', h.reason,
                               'actor', h.actor, 'amount', d.amount, 'currency', d.currency)
       FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id
      WHERE d.person_id = $1 AND ($2::timestamptz IS NULL OR (h.at, 'd' || h.id::text) < ($2, $3))
      ORDER BY h.at DESC, 'd' || h.id::text DESC LIMIT $4)
) AS t
ORDER BY at DESC, key DESC
LIMIT $4
"""

# --- the web workspace (issue 12) ---

USERS = "SELECT id, name, role FROM users WHERE active ORDER BY name"

# A rep's open leads and prospects, next steps first (overdue at the top), then the newest.
MY_WORK = """
SELECT person_id AS id, first_name, last_name, company, emails, stage, next_step, next_step_on
  FROM persons
 WHERE owner_id = $1 AND stage IN ('lead', 'prospect')
 ORDER BY next_step_on ASC NULLS LAST, person_id DESC
 LIMIT $2
"""

# Follow-ups whose day has passed: the rep's own ($1), or everyone's when $1 is NULL (admins).
OVERDUE = """
SELECT person_id AS id, first_name, last_name, company, stage, next_step, next_step_on,
       (SELECT name FROM users WHERE users.id = owner_id) AS owner
  FROM persons
 WHERE next_step_on < current_date AND ($1::uuid IS NULL OR owner_id = $1)
   AND stage NOT IN ('lost', 'disqualified')
 ORDER BY next_step_on ASC, person_id DESC
 LIMIT $2
"""

# The newest form submissions by people (not bots), through the partial index touchpoints_forms.
RECENT_FORMS = """
SELECT t.occurred_at, t.person_id AS id, t.url, p.first_name, p.last_name, p.emails, p.stage,
       t.event::json->'form'->>'key' AS form_key
  FROM touchpoints t JOIN persons p USING (person_id)
 WHERE t.type = 'form_submit' AND NOT t.automated
 ORDER BY t.occurred_at DESC
 LIMIT $1
"""

FORMS_SINCE = (
    "SELECT count(*) FROM touchpoints WHERE type = 'form_submit' AND occurred_at >= $1 AND NOT automated"
)

# Form submissions per day since $1 (through touchpoints_forms), every day present, for the home page's chart.
FORMS_PER_DAY = """
SELECT d::date AS day, count(t.occurred_at) AS forms
  FROM generate_series($1::date, current_date, interval '1 day') AS d
  LEFT JOIN touchpoints t ON t.type = 'form_submit' AND NOT t.automated
                         AND t.occurred_at >= d AND t.occurred_at < d + interval '1 day'
 GROUP BY d ORDER BY d
"""

STAGE_HISTORY = """
SELECT at, from_stage, to_stage, cause_event_id, cause_user, reason
  FROM stage_transitions WHERE person_id = $1 ORDER BY at DESC, id DESC LIMIT 100
"""

# The score's reasons: each active rule's events for this person (people's, not bots'), decayed to now, as the
# ingestion scored them (stages.Rule.matches: a rule's url_contains is a plain substring).
SCORE_REASONS = """
SELECT r.name, r.event_type, r.url_contains, r.points, count(*) AS events, max(t.occurred_at) AS last_at,
       sum(r.points * power(0.5, greatest(extract(epoch FROM (now() - t.occurred_at)), 0) / 86400.0
                                 / (SELECT half_life_days FROM scoring))) AS points_now
  FROM touchpoints t
  JOIN score_rules r ON r.active AND r.event_type = t.type
                    AND (r.url_contains IS NULL OR strpos(coalesce(t.url, ''), r.url_contains) > 0)
 WHERE t.person_id = $1 AND NOT t.automated
 GROUP BY r.id, r.name, r.event_type, r.url_contains, r.points
 ORDER BY points_now DESC
"""

PURCHASES_OF = """
SELECT pu.id, pu.purchased_on, pu.quantity, pu.price_paid, pu.special_instructions, pr.name AS product,
       pr.currency, u.name AS rep
  FROM purchases pu JOIN products pr ON pr.id = pu.product_id LEFT JOIN users u ON u.id = pu.sales_rep
 WHERE pu.person_id = $1 ORDER BY pu.purchased_on DESC, pu.created_at DESC LIMIT 100
"""

FEEDBACK_OF = (
    "SELECT rating, text, created_at FROM feedback WHERE person_id = $1 ORDER BY created_at DESC LIMIT 100"
)

PRODUCTS = "SELECT id, name, list_price, currency FROM products WHERE active ORDER BY name"

FIELD_DEFINITIONS_FULL = "SELECT name, label, type, choices, required FROM field_definitions ORDER BY label"

NAMES_OF_PRODUCTS = "SELECT id::text, name, currency FROM products WHERE id = ANY($1::uuid[])"
NAMES_OF_USERS = "SELECT id::text, name FROM users WHERE id = ANY($1::uuid[])"

SAVED_FILTERS = "SELECT id, name, query FROM saved_filters WHERE user_key = $1 ORDER BY name"
SAVE_FILTER = """
INSERT INTO saved_filters (user_key, name, query) VALUES ($1, $2, $3)
ON CONFLICT (user_key, name) DO UPDATE SET query = EXCLUDED.query
"""
DELETE_FILTER = "DELETE FROM saved_filters WHERE id = $1 AND user_key = $2"
