"""SQL of the service desk: tracking numbers, cases, their comments and events, contracts and the knowledge base."""

from __future__ import annotations

# The year's next tracking number: the counter row is locked until the case's transaction ends, so concurrent
# creations take their turns and no number is handed out twice (migration 0030).
NEXT_NUMBER = """
INSERT INTO case_numbers (year, last) VALUES (extract(year FROM now() AT TIME ZONE 'UTC')::int, 1)
ON CONFLICT (year) DO UPDATE SET last = case_numbers.last + 1
RETURNING year, last
"""

INSERT_CASE = """
INSERT INTO cases (tracking_number, person_id, type, priority, subject, description, purchase_id, contract_id,
                   assignee_id, due_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(hours => $10))
RETURNING *
"""

CONTRACT_BY_ID = "SELECT id, person_id, response_hours, status FROM service_contracts WHERE id = $1"

# The contract that sets the service level of a case naming none: an active one of the person's covering today,
# the one on the case's purchase ($2) first, then the one ending last.
CONTRACT_COVERING = """
SELECT id, person_id, response_hours, status FROM service_contracts
 WHERE person_id = $1 AND status = 'active' AND current_date BETWEEN starts_on AND ends_on
   AND ($2::uuid IS NULL OR purchase_id = $2 OR purchase_id IS NULL)
 ORDER BY (purchase_id IS NOT DISTINCT FROM $2) DESC, ends_on DESC
 LIMIT 1
"""

PURCHASE_OWNER = "SELECT person_id FROM purchases WHERE id = $1"
PERSON_EXISTS = "SELECT EXISTS (SELECT 1 FROM persons WHERE person_id = $1)"
USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND active)"

CASE_COLUMNS = """
c.id, c.tracking_number, c.person_id, c.type, c.status, c.priority, c.subject, c.description, c.purchase_id,
c.contract_id, c.product_id, c.assignee_id, u.name AS assignee, c.due_at, c.created_at, c.updated_at, c.resolved_at,
(c.status IN ('new', 'open', 'waiting') AND c.due_at < now()) AS overdue"""

CASE_BY_NUMBER = f"""
SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN users u ON u.id = c.assignee_id WHERE c.tracking_number = $1
"""  # noqa: S608 (fixed columns)

CASE_FOR_UPDATE = "SELECT * FROM cases WHERE tracking_number = $1 FOR UPDATE"

# The queue's rows: {where} is made of fixed conditions (service/cases.py find_cases), the values are parameters.
QUEUE = """
SELECT {columns}, p.first_name, p.last_name, p.emails[1] AS email
  FROM cases c JOIN persons p ON p.person_id = c.person_id LEFT JOIN users u ON u.id = c.assignee_id
 WHERE {where}
 ORDER BY c.created_at DESC, c.id DESC
 LIMIT {limit}
"""

SET_STATUS = """
UPDATE cases SET status = $2, updated_at = now(),
       resolved_at = CASE WHEN $2 IN ('resolved', 'closed') THEN coalesce(resolved_at, now()) ELSE NULL END
 WHERE id = $1
RETURNING *
"""

SET_FIELDS = """
UPDATE cases SET priority = coalesce($2, priority), assignee_id = CASE WHEN $3 THEN $4 ELSE assignee_id END,
       updated_at = now()
 WHERE id = $1
RETURNING *
"""

INSERT_EVENT = """
INSERT INTO case_events (case_id, person_id, kind, from_status, to_status, actor) VALUES ($1, $2, $3, $4, $5, $6)
"""

INSERT_COMMENT = """
INSERT INTO case_comments (case_id, author_id, author, body, public) VALUES ($1, $2, $3, $4, $5)
RETURNING id, author, body, public, created_at
"""

COMMENTS_OF = """
SELECT id, author, body, public, created_at FROM case_comments
 WHERE case_id = $1 AND (public OR NOT $2) ORDER BY created_at, id
"""

EVENTS_OF = (
    "SELECT at, kind, from_status, to_status, actor FROM case_events WHERE case_id = $1 ORDER BY at, id"
)

# --- the case page ---

CUSTOMER = """
SELECT person_id, first_name, last_name, company, emails, phones, stage, erased_at FROM persons WHERE person_id = $1
"""

PURCHASES_OF = """
SELECT pu.id, pu.purchased_on, pu.quantity, pu.price_paid, pr.name AS product, pr.currency, pr.info
  FROM purchases pu JOIN products pr ON pr.id = pu.product_id
 WHERE pu.person_id = $1 ORDER BY pu.purchased_on DESC, pu.created_at DESC LIMIT 50
"""

CONTRACTS_OF = """
SELECT sc.id, sc.name, sc.starts_on, sc.ends_on, sc.response_hours, sc.status, pr.name AS product
  FROM service_contracts sc LEFT JOIN products pr ON pr.id = sc.product_id
 WHERE sc.person_id = $1 ORDER BY sc.ends_on DESC LIMIT 50
"""

# The case's product (its purchase's, else its contract's: cases.product_id, migration 0066) and the knowledge
# base articles about it (migration 0067), for the agent beside the case.
PRODUCT = "SELECT id, sku, name, info FROM products WHERE id = $1"
PRODUCT_ARTICLES = """
SELECT id, title, public FROM kb_articles WHERE product_id = $1 ORDER BY updated_at DESC, id LIMIT 20
"""

AGENTS = (
    "SELECT id, name, role FROM users WHERE active AND role IN ('admin', 'sales', 'service') ORDER BY name"
)

# --- contracts ---

CONTRACT_LIST = """
SELECT sc.id, sc.name, sc.person_id, sc.starts_on, sc.ends_on, sc.response_hours, sc.status,
       pr.name AS product, p.first_name, p.last_name, p.emails[1] AS email
  FROM service_contracts sc JOIN persons p ON p.person_id = sc.person_id
  LEFT JOIN products pr ON pr.id = sc.product_id
 WHERE ($1::text IS NULL OR sc.status = $1)
 ORDER BY sc.ends_on, sc.id
 LIMIT $2
"""

# Active contracts ending within $1 days (from today), soonest first.
RENEWALS = """
SELECT sc.id, sc.name, sc.person_id, sc.starts_on, sc.ends_on, sc.response_hours, sc.status,
       pr.name AS product, p.first_name, p.last_name, p.emails[1] AS email
  FROM service_contracts sc JOIN persons p ON p.person_id = sc.person_id
  LEFT JOIN products pr ON pr.id = sc.product_id
 WHERE sc.status = 'active' AND sc.ends_on BETWEEN current_date AND current_date + $1::int
 ORDER BY sc.ends_on, sc.id
 LIMIT $2
"""

# --- the knowledge base ---

# The words of a query that no title holds, each with the title word nearest to it by trigram distance (within
# pg_trgm's similarity threshold), for typo tolerance (migration 0031). $1: the query's words, lower-cased.
CORRECTIONS = """
SELECT q.word, (SELECT k.word FROM kb_words k WHERE k.word % q.word ORDER BY k.word <-> q.word LIMIT 1) AS meant
  FROM unnest($1::text[]) AS q(word)
 WHERE NOT EXISTS (SELECT 1 FROM kb_words k WHERE k.word = q.word)
"""

# Ranked full-text search. $1: the words as typed (websearch syntax, English stemming), $2: the same with misspelt
# words replaced by the title words meant (or NULL), either matching. Title hits come first (ranked on the title),
# then body hits (ranked on the whole article, the title weighted A above the body's B); body hits are looked for
# only when the title hits do not fill the page. Only a bounded set of candidates is ranked ($5 of each kind, in
# index order), so a word in every article costs no more than a rare one; headlines are made for the page's rows
# only. $3: public articles only; $4: limit; $6: ts_headline's options.
KB_SEARCH = """
WITH q AS (SELECT websearch_to_tsquery('english', $1)
                  || coalesce(websearch_to_tsquery('english', $2), ''::tsquery) AS query),
in_title AS (
    SELECT a.id, 1 + ts_rank(a.title_search, q.query) AS rank
      FROM kb_articles a, q WHERE a.title_search @@ q.query AND (a.public OR NOT $3) LIMIT $5
),
in_body AS (
    SELECT a.id, ts_rank(a.search, q.query) AS rank
      FROM kb_articles a, q
     WHERE (SELECT count(*) FROM in_title) < $4 AND a.search @@ q.query AND (a.public OR NOT $3)
       AND NOT a.title_search @@ q.query
     LIMIT $5
),
hits AS (
    SELECT id, rank FROM (SELECT * FROM in_title UNION ALL SELECT * FROM in_body) AS c
     ORDER BY rank DESC, id LIMIT $4
)
SELECT a.id, a.title, a.tags, a.public, h.rank, ts_headline('english', a.body, q.query, $6) AS snippet
  FROM hits h JOIN kb_articles a USING (id), q
 ORDER BY h.rank DESC, a.id
"""

# Articles like a case's text: any of its stemmed words ($1, a tsquery of plain lexemes ORed), title hits first,
# from a bounded set of candidates as in KB_SEARCH ($3).
KB_SUGGEST = """
WITH in_title AS (
    SELECT id, 1 + ts_rank(title_search, $1::tsquery) AS rank FROM kb_articles WHERE title_search @@ $1::tsquery
     LIMIT $3
),
in_body AS (
    SELECT id, ts_rank(search, $1::tsquery) AS rank FROM kb_articles
     WHERE (SELECT count(*) FROM in_title) < $2 AND search @@ $1::tsquery LIMIT $3
)
SELECT a.id, a.title, a.public, c.rank
  FROM (SELECT * FROM in_title UNION ALL SELECT * FROM in_body) AS c JOIN kb_articles a USING (id)
 ORDER BY c.rank DESC, a.id
 LIMIT $2
"""

LEXEMES = "SELECT tsvector_to_array(to_tsvector('english', $1))"

KB_RECENT = """
SELECT id, title, tags, public, updated_at FROM kb_articles ORDER BY updated_at DESC, id LIMIT $1
"""

KB_ARTICLE = """
SELECT a.id, a.title, a.body, a.tags, a.product_id, a.public, a.created_at, a.updated_at, pr.name AS product
  FROM kb_articles a LEFT JOIN products pr ON pr.id = a.product_id WHERE a.id = $1
"""

PRODUCTS = "SELECT id, name FROM products WHERE active ORDER BY name"

# --- cases from support forms (service/support.py) ---

SUPPORT_FORMS = "SELECT key, case_type FROM forms WHERE support AND key = ANY($1::text[])"

# A case opened by a form submission: ON CONFLICT, a submission that opened one already opens none.
INSERT_FORM_CASE = """
INSERT INTO cases (tracking_number, person_id, type, subject, description, contract_id, due_at, event_id, form_ref)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(hours => $7), $8, $9)
ON CONFLICT DO NOTHING
RETURNING id, tracking_number
"""

FORM_CASE_EXISTS = "SELECT EXISTS (SELECT 1 FROM cases WHERE event_id = $1 OR form_ref = $2)"

# The thank-you page's lookups: by the support page's reference, or by the submission's event id.
NUMBER_BY_REF = "SELECT tracking_number FROM cases WHERE form_ref = $1"
NUMBER_BY_EVENT = "SELECT tracking_number FROM cases WHERE event_id = $1"

# The public status page: the case only when the email is one of its person's (one answer for both misses).
PUBLIC_CASE = """
SELECT c.id, c.tracking_number, c.type, c.status, c.subject, c.created_at, c.updated_at, c.resolved_at
  FROM cases c JOIN persons p ON p.person_id = c.person_id
 WHERE c.tracking_number = $1 AND $2 = ANY (p.emails) AND p.erased_at IS NULL
"""

FIRST_RESPONSE = "UPDATE cases SET first_response_at = coalesce(first_response_at, now()) WHERE id = $1"
