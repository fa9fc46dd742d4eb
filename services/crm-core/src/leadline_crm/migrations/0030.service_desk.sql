-- The service desk (issue 14): service contracts, cases with SR-YYYY-NNNNNN tracking numbers, their comments and
-- events (the person's timeline shows them), and the knowledge base with its full-text and trigram indexes.
-- depends: 0013.identity_conflicts

-- A contract a customer holds for a product or a purchase: its period and service level (the hours within which a
-- case is answered; a case's due time is its creation plus these hours).
CREATE TABLE service_contracts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id       uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    product_id      uuid REFERENCES products (id),
    purchase_id     uuid REFERENCES purchases (id),
    name            text NOT NULL,
    starts_on       date NOT NULL,
    ends_on         date NOT NULL,
    response_hours  integer NOT NULL DEFAULT 24 CHECK (response_hours BETWEEN 1 AND 8760),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'cancelled', 'expired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_contracts_period CHECK (ends_on >= starts_on)
);
CREATE INDEX service_contracts_person ON service_contracts (person_id, ends_on DESC);
CREATE INDEX service_contracts_renewal ON service_contracts (ends_on) WHERE status = 'active';

-- One row per year: the last tracking number handed out. A case's insert bumps it with UPDATE … RETURNING in its
-- own transaction, so concurrent creations queue on the row lock and a number is never given twice; a rolled
-- back creation gives its number back with the rollback, so no number names two cases or goes missing.
CREATE TABLE case_numbers (
    year  integer PRIMARY KEY,
    last  integer NOT NULL
);

CREATE TABLE cases (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tracking_number  text NOT NULL UNIQUE CHECK (tracking_number ~ '^SR-[0-9]{4}-[0-9]{6,}$'),
    person_id        uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    type             text NOT NULL CHECK (type IN ('question', 'complaint', 'fault', 'return')),
    status           text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'open', 'waiting', 'resolved', 'closed')),
    priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject          text NOT NULL,
    description      text NOT NULL,
    purchase_id      uuid REFERENCES purchases (id),
    contract_id      uuid REFERENCES service_contracts (id),
    assignee_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    due_at           timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz
);
-- The queue: newest first, whole or by status, type or assignee; overdue ones by due time.
CREATE INDEX cases_queue ON cases (created_at DESC, id DESC);
CREATE INDEX cases_status ON cases (status, created_at DESC, id DESC);
CREATE INDEX cases_type ON cases (type, created_at DESC, id DESC);
CREATE INDEX cases_assignee ON cases (assignee_id, created_at DESC, id DESC) WHERE assignee_id IS NOT NULL;
CREATE INDEX cases_overdue ON cases (due_at) WHERE status IN ('new', 'open', 'waiting');
CREATE INDEX cases_person ON cases (person_id, created_at DESC);

-- What happened to a case (created, status moves, assignments, comments), for its page and the person's timeline.
CREATE TABLE case_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    person_id    uuid NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    kind         text NOT NULL CHECK (kind IN ('created', 'status', 'assigned', 'comment')),
    from_status  text,
    to_status    text,
    actor        text NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id, at);
CREATE INDEX case_events_person ON case_events (person_id, at DESC, id DESC);

CREATE TABLE case_comments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    case_id     uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    author_id   uuid REFERENCES users (id) ON DELETE SET NULL,
    author      text NOT NULL,
    body        text NOT NULL,
    public      boolean NOT NULL DEFAULT false,   -- customer-visible; internal otherwise
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_comments_case ON case_comments (case_id, created_at);

-- Knowledge base articles. `search` weighs the title (A) above the body (B), English stemming; the trigram index
-- on the title finds misspelt words (pg_trgm lives in schema public, migration 0012).
CREATE TABLE kb_articles (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text NOT NULL,
    body        text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    product_id  uuid REFERENCES products (id) ON DELETE SET NULL,
    public      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    search      tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english'::regconfig, title), 'A')
                    || setweight(to_tsvector('english'::regconfig, body), 'B')) STORED
);
CREATE INDEX kb_articles_search ON kb_articles USING gin (search);
CREATE INDEX kb_articles_title_trgm ON kb_articles USING gin (title public.gin_trgm_ops);
CREATE INDEX kb_articles_tags ON kb_articles USING gin (tags);
CREATE UNIQUE INDEX kb_articles_title ON kb_articles (lower(title));
