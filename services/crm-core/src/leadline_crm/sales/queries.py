"""SQL of the sales domain: companies, pipelines, deals and their stage history, tasks, assignment, sales volume."""

from __future__ import annotations

# --- companies ---

# Link the known persons holding an email at $2 to company $1, unless a rep chose their company by hand. The
# trigram index persons_search (migration 0012) finds the candidates; the array test keeps exact domains only.
LINK_BY_DOMAIN = """
UPDATE persons SET company_id = $1, company_linked = 'domain', updated_at = now()
 WHERE person_search_text(first_name, last_name, company, emails) LIKE '%@' || $2 || '%'
   AND (identified OR stage <> 'anonymous' OR emails <> '{}' OR phones <> '{}' OR user_ids <> '{}'
        OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL)
   AND EXISTS (SELECT 1 FROM unnest(emails) AS e WHERE split_part(e, '@', 2) = $2)
   AND company_linked IS DISTINCT FROM 'hand' AND company_id IS DISTINCT FROM $1
"""

# Persons linked by domain to $1 whose emails no longer match its domain $2 (the domain changed or was cleared).
UNLINK_STALE = """
UPDATE persons SET company_id = NULL, company_linked = NULL, updated_at = now()
 WHERE company_id = $1 AND company_linked = 'domain'
   AND ($2::text IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(emails) AS e WHERE split_part(e, '@', 2) = $2))
"""

# New leads ($1) get the company of their email's domain (one index probe per domain). No company has a free-mail
# domain (sales/records.py refuses one), so a gmail address finds none.
LINK_NEW_LEADS = """
UPDATE persons AS p SET company_id = c.id, company_linked = 'domain'
  FROM companies AS c
 WHERE p.person_id = ANY($1::uuid[]) AND p.company_id IS NULL
   AND c.domain = ANY(ARRAY(SELECT split_part(e, '@', 2) FROM unnest(p.emails) AS e))
"""

LINK_BY_HAND = """
UPDATE persons SET company_id = $2, company_linked = CASE WHEN $2::uuid IS NULL THEN NULL ELSE 'hand' END,
       updated_at = now()
 WHERE person_id = $1 RETURNING person_id
"""

COMPANY = """
SELECT c.*, (SELECT name FROM users WHERE users.id = c.owner_id) AS owner
  FROM companies c WHERE c.id = $1
"""

# The company list ($1: an ILIKE pattern or NULL), every row (the CSV export) or a page of it.
COMPANIES = """
SELECT c.id, c.name, c.domain, c.industry, c.size, c.country, u.name AS owner,
       (SELECT count(*) FROM persons p WHERE p.company_id = c.id) AS people,
       (SELECT count(*) FROM deals d WHERE d.company_id = c.id AND d.status = 'open') AS open_deals, c.created_at
  FROM companies c LEFT JOIN users u ON u.id = c.owner_id
 WHERE ($1::text IS NULL OR c.name ILIKE $1 OR c.domain ILIKE $1)
 ORDER BY lower(c.name), c.id
"""
COMPANIES_PAGE = COMPANIES + " LIMIT $2 OFFSET $3"
COMPANY_EXPORT_COLUMNS = ("id", "name", "domain", "industry", "size", "country", "owner", "people", "open_deals",
                          "created_at")  # fmt: skip

COMPANY_PEOPLE = """
SELECT person_id AS id, first_name, last_name, emails, title, stage, company_linked,
       (SELECT name FROM users WHERE users.id = owner_id) AS owner
  FROM persons WHERE company_id = $1 ORDER BY last_name NULLS LAST, first_name, person_id LIMIT 200
"""

# --- pipelines ---

PIPELINES = "SELECT id, name, is_default FROM pipelines ORDER BY NOT is_default, name"

STAGES = """
SELECT id, pipeline_id, name, position, probability, kind FROM pipeline_stages ORDER BY pipeline_id, position
"""

STAGES_OF = """
SELECT id, name, position, probability, kind FROM pipeline_stages WHERE pipeline_id = $1 ORDER BY position
"""

DEFAULT_PIPELINE = "SELECT id FROM pipelines ORDER BY NOT is_default, created_at LIMIT 1"

STAGE_IN = "SELECT id, name, kind, probability FROM pipeline_stages WHERE pipeline_id = $1 AND id = $2"

STAGE_BY_NAME = "SELECT id, name, kind, probability FROM pipeline_stages WHERE pipeline_id = $1 AND name = $2"

FIRST_OPEN_STAGE = """
SELECT id, name, kind, probability FROM pipeline_stages WHERE pipeline_id = $1 AND kind = 'open'
 ORDER BY position LIMIT 1
"""

INSERT_PIPELINE = "INSERT INTO pipelines (name) VALUES ($1) RETURNING id, name, is_default"

INSERT_STAGE = """
INSERT INTO pipeline_stages (pipeline_id, name, position, probability, kind) VALUES ($1, $2, $3, $4, $5)
"""

# --- deals ---

DEAL_COLUMNS = """
d.id, d.title, d.person_id, d.company_id, d.amount, d.currency, d.pipeline_id, d.stage_id, s.name AS stage,
s.probability, d.expected_close_on, d.owner_id, d.status, d.close_reason, d.closed_at, d.stage_at, d.created_at,
d.updated_at
"""

DEAL = f"SELECT {DEAL_COLUMNS} FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.id = $1"  # noqa: S608

DEAL_PAGE = f"""
SELECT {DEAL_COLUMNS}, (SELECT name FROM pipelines WHERE pipelines.id = d.pipeline_id) AS pipeline,
       (SELECT name FROM users WHERE users.id = d.owner_id) AS owner,
       (SELECT coalesce(nullif(concat_ws(' ', first_name, last_name), ''), emails[1])
          FROM persons WHERE person_id = d.person_id) AS person,
       (SELECT name FROM companies WHERE companies.id = d.company_id) AS company
  FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.id = $1
"""  # noqa: S608

# A deal's stage history with who moved it (the actor label user:<id> as the user's name).
HISTORY_NAMED = """
SELECT h.from_stage, h.to_stage, h.at, h.reason, coalesce(u.name, h.actor) AS actor
  FROM deal_stage_history h
  LEFT JOIN users u ON h.actor LIKE 'user:%' AND u.id::text = substr(h.actor, 6)
 WHERE h.deal_id = $1 ORDER BY h.at DESC, h.id DESC
"""

INSERT_HISTORY = """
INSERT INTO deal_stage_history (deal_id, from_stage_id, to_stage_id, from_stage, to_stage, at, actor, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

HISTORY = """
SELECT from_stage, to_stage, at, actor, reason FROM deal_stage_history WHERE deal_id = $1 ORDER BY at, id
"""

DEALS_OF_PERSON = f"""
SELECT {DEAL_COLUMNS} FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
 WHERE d.person_id = $1 ORDER BY d.created_at DESC LIMIT 100
"""  # noqa: S608

DEALS_OF_COMPANY = f"""
SELECT {DEAL_COLUMNS}, (SELECT name FROM users WHERE users.id = d.owner_id) AS owner
  FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
 WHERE d.company_id = $1 ORDER BY d.created_at DESC LIMIT 100
"""  # noqa: S608

# Every column of the board at once: the first $3 deals of each stage ($2, in order), soonest close first, each read
# in an index's order (deals_board; a rep's own, $4, through deals_owner_board), with who and whose.
_BOARD_CARDS = """
SELECT c.*, u.name AS owner, co.name AS company,
       coalesce(nullif(concat_ws(' ', p.first_name, p.last_name), ''), p.emails[1]) AS person
  FROM unnest($2::uuid[]) WITH ORDINALITY AS s(id, position)
 CROSS JOIN LATERAL (
       SELECT d.id, d.stage_id, d.title, d.amount, d.currency, d.expected_close_on, d.status, d.owner_id,
              d.person_id, d.company_id
         FROM deals d
        WHERE d.pipeline_id = $1 AND d.stage_id = s.id {owner}
        ORDER BY d.expected_close_on NULLS LAST, d.id
        LIMIT $3) AS c
  LEFT JOIN users u ON u.id = c.owner_id
  LEFT JOIN persons p ON p.person_id = c.person_id
  LEFT JOIN companies co ON co.id = c.company_id
 ORDER BY s.position, c.expected_close_on NULLS LAST, c.id
"""
BOARD_CARDS = _BOARD_CARDS.format(owner="")
BOARD_CARDS_OF = _BOARD_CARDS.format(owner="AND d.owner_id = $4")

# Each column's count and value per currency, from the totals the deals' trigger keeps (migration 0042): everyone's,
# or one rep's ($2).
BOARD_TOTALS = """
SELECT stage_id, currency, sum(deals) AS deals, sum(amount) AS amount
  FROM deal_totals WHERE pipeline_id = $1 GROUP BY stage_id, currency HAVING sum(deals) > 0
"""
BOARD_TOTALS_OF = """
SELECT stage_id, currency, deals, amount FROM deal_totals WHERE pipeline_id = $1 AND owner_key = $2 AND deals > 0
"""

# --- tasks ---

TASK_DUE = "greatest(t.due_at, coalesce(t.snoozed_until, t.due_at))"

# A rep's open tasks due before $2 (overdue when $2 is now), soonest first; everyone's when $1 is NULL.
TASKS_DUE = f"""
SELECT t.id, t.title, t.due_at, t.snoozed_until, {TASK_DUE} AS due, t.person_id, t.company_id, t.deal_id,
       (SELECT coalesce(nullif(concat_ws(' ', first_name, last_name), ''), emails[1])
          FROM persons WHERE person_id = t.person_id) AS person,
       (SELECT name FROM companies WHERE companies.id = t.company_id) AS company,
       (SELECT title FROM deals WHERE deals.id = t.deal_id) AS deal,
       (SELECT name FROM users WHERE users.id = t.owner_id) AS owner
  FROM tasks t
 WHERE t.done_at IS NULL AND ($1::uuid IS NULL OR t.owner_id = $1) AND {TASK_DUE} < $2
 ORDER BY {TASK_DUE}, t.id
 LIMIT $3
"""  # noqa: S608

TASKS_OF = f"""
SELECT t.id, t.title, t.due_at, t.snoozed_until, {TASK_DUE} AS due, t.done_at,
       (SELECT name FROM users WHERE users.id = t.owner_id) AS owner
  FROM tasks t WHERE {{column}} = $1
 ORDER BY t.done_at IS NOT NULL, {TASK_DUE} LIMIT 100
"""  # noqa: S608

# --- assignment ---

ACTIVE_RULES = """
SELECT id, name, country, form_key, team_id, user_id FROM assignment_rules WHERE active ORDER BY position, created_at
"""

# The new leads ($1) still without an owner, with what rules look at; the form key of the person's newest form
# submission is read only when a rule asks ($2).
UNOWNED_LEADS = """
SELECT p.person_id, p.country,
       CASE WHEN $2 THEN (SELECT t.event::json->'form'->>'key' FROM touchpoints t
                           WHERE t.person_id = p.person_id AND t.type = 'form_submit'
                           ORDER BY t.occurred_at DESC LIMIT 1) END AS form_key
  FROM persons p WHERE p.person_id = ANY($1::uuid[]) AND p.owner_id IS NULL
 ORDER BY p.person_id
"""

# Take the team's next turn (the row lock is held until commit, so replicas take turns one at a time).
TAKE_TURN = "UPDATE teams SET turn = turn + 1 WHERE id = $1 RETURNING turn - 1"

TEAM_MEMBERS = """
SELECT m.user_id FROM team_members m JOIN users u ON u.id = m.user_id
 WHERE m.team_id = $1 AND u.active ORDER BY m.created_at, m.user_id
"""

SET_OWNER = "UPDATE persons SET owner_id = $2, updated_at = now() WHERE person_id = $1 AND owner_id IS NULL"

# --- set-based assignment (a chunk's leads at once: an import's 5,000, or ingestion's batch) ---

# The active members of several teams ($1), each team's in its turn order (TEAM_MEMBERS').
TEAMS_MEMBERS = """
SELECT m.team_id, m.user_id FROM team_members m JOIN users u ON u.id = m.user_id
 WHERE m.team_id = ANY($1::uuid[]) AND u.active ORDER BY m.team_id, m.created_at, m.user_id
"""

# Lock the teams whose turns a transaction takes in id order (two replicas taking turns of two teams cannot
# deadlock), before TAKE_TURNS.
LOCK_TEAMS = "SELECT id FROM teams WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"

# Take $2[i] turns of team $1[i] at once; each team's first turn taken (the row lock is held until commit, so a
# replica's next turns follow these).
TAKE_TURNS = """
UPDATE teams t SET turn = t.turn + w.n FROM unnest($1::uuid[], $2::bigint[]) AS w(id, n) WHERE t.id = w.id
RETURNING t.id, t.turn - w.n AS first
"""

# Give each person $1[i] without an owner the owner $2[i]; who got one.
SET_OWNERS = """
UPDATE persons p SET owner_id = v.owner_id, updated_at = now()
  FROM unnest($1::uuid[], $2::uuid[]) AS v(person_id, owner_id)
 WHERE p.person_id = v.person_id AND p.owner_id IS NULL
RETURNING p.person_id, p.owner_id
"""

# One audit entry per owner given (audit.record's row: action assign, the owner and the rule's name).
AUDIT_ASSIGNED = """
INSERT INTO audit_log (actor, actor_user_id, via, action, entity_type, entity_id, changes)
SELECT $1, $2, $3, 'assign', 'persons', v.person_id::text,
       jsonb_build_object('owner_id', jsonb_build_array(NULL, v.owner_id::text), 'rule', v.rule)
  FROM unnest($4::uuid[], $5::uuid[], $6::text[]) AS v(person_id, owner_id, rule)
"""

TEAMS_PAGE = """
SELECT t.id, t.name, t.turn,
       coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'name', u.name) ORDER BY m.created_at, m.user_id)
                FILTER (WHERE m.id IS NOT NULL), '[]'::jsonb) AS members
  FROM teams t LEFT JOIN team_members m ON m.team_id = t.id LEFT JOIN users u ON u.id = m.user_id
 GROUP BY t.id ORDER BY t.name
"""

RULES_PAGE = """
SELECT r.id, r.name, r.position, r.country, r.form_key, r.active, t.name AS team, u.name AS rep
  FROM assignment_rules r LEFT JOIN teams t ON t.id = r.team_id LEFT JOIN users u ON u.id = r.user_id
 ORDER BY r.position, r.created_at
"""

# --- sales volume ---

# Per rep ($3: 'day', 'week', 'month'), from $1 to $2: deals won and their value, purchases and revenue, activities.
VOLUME = """
WITH won AS (
    SELECT owner_id AS rep, date_trunc($3, closed_at) AS period, count(*) AS deals_won, sum(amount) AS won_value
      FROM deals WHERE status = 'won' AND closed_at >= $1 AND closed_at < $2 GROUP BY 1, 2
), bought AS (
    SELECT sales_rep AS rep, date_trunc($3, purchased_on::timestamptz) AS period, count(*) AS purchases,
           sum(price_paid) AS revenue
      FROM purchases WHERE purchased_on >= $1::date AND purchased_on < $2::date GROUP BY 1, 2
), logged AS (
    SELECT rep_id AS rep, date_trunc($3, at) AS period, count(*) AS activities
      FROM activities WHERE at >= $1 AND at < $2 GROUP BY 1, 2
)
SELECT k.rep, u.name AS rep_name, k.period,
       coalesce(won.deals_won, 0) AS deals_won, coalesce(won.won_value, 0) AS won_value,
       coalesce(bought.purchases, 0) AS purchases, coalesce(bought.revenue, 0) AS revenue,
       coalesce(logged.activities, 0) AS activities
  FROM (SELECT rep, period FROM won UNION SELECT rep, period FROM bought UNION SELECT rep, period FROM logged) AS k
  LEFT JOIN won USING (rep, period) LEFT JOIN bought USING (rep, period) LEFT JOIN logged USING (rep, period)
  LEFT JOIN users u ON u.id = k.rep
 ORDER BY k.period, u.name NULLS LAST
"""

# Open deals' value by stage, and weighted by the stage's win probability, per currency (from deal_totals: a deal
# is open exactly while its stage is an open one).
WEIGHTED = """
SELECT s.id AS stage_id, s.name AS stage, s.position, s.probability, t.currency, sum(t.deals) AS deals,
       sum(t.amount) AS amount, round(sum(t.amount) * s.probability / 100, 2) AS weighted
  FROM deal_totals t JOIN pipeline_stages s ON s.id = t.stage_id
 WHERE t.pipeline_id = $1 AND s.kind = 'open'
 GROUP BY s.id, s.name, s.position, s.probability, t.currency
HAVING sum(t.deals) > 0
 ORDER BY s.position, t.currency
"""
