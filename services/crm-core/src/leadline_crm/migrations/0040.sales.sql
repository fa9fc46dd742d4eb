-- The sales workspace (issue 15): companies (people linked by their email's domain or by hand), deals in
-- configurable pipelines whose stages carry a win probability (a default pipeline seeded here), each deal's stage
-- history, tasks, and the assignment rules that give a new lead an owner (teams with a round-robin turn kept here,
-- so it is fair across restarts and replicas: the turn is taken under the team row's lock).
-- depends: 0013.identity_conflicts

CREATE TABLE companies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    domain      text CHECK (domain = lower(domain) AND domain ~ '^[^@\s/]+\.[^@\s/]+$'),
    industry    text,
    size        text,
    country     text,
    owner_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX companies_domain ON companies (domain) WHERE domain IS NOT NULL;
CREATE INDEX companies_name ON companies (lower(name));

-- A person's company: found from their email's domain ('domain') or set by a rep ('hand', which a domain never
-- overrides). Nullable without a default, so adding it rewrites nothing.
ALTER TABLE persons
    ADD COLUMN company_id      uuid REFERENCES companies (id) ON DELETE SET NULL,
    ADD COLUMN company_linked  text CHECK (company_linked IN ('domain', 'hand'));
CREATE INDEX persons_company ON persons (company_id) WHERE company_id IS NOT NULL;

CREATE TABLE pipelines (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pipelines_one_default ON pipelines (is_default) WHERE is_default;

-- kind: 'open' stages are worked; moving a deal to a 'won' or 'lost' stage closes it.
CREATE TABLE pipeline_stages (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id  uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position     integer NOT NULL,
    probability  numeric(5, 2) NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind         text NOT NULL DEFAULT 'open' CHECK (kind IN ('open', 'won', 'lost')),
    UNIQUE (pipeline_id, name),
    UNIQUE (pipeline_id, id)
);

WITH p AS (INSERT INTO pipelines (name, is_default) VALUES ('Sales', true) RETURNING id)
INSERT INTO pipeline_stages (pipeline_id, name, position, probability, kind)
SELECT p.id, s.name, s.position, s.probability, s.kind
  FROM p, (VALUES ('Qualified', 1, 10, 'open'), ('Meeting', 2, 25, 'open'), ('Proposal', 3, 50, 'open'),
                  ('Negotiation', 4, 75, 'open'), ('Won', 5, 100, 'won'), ('Lost', 6, 0, 'lost'))
       AS s(name, position, probability, kind);

CREATE TABLE deals (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    person_id          uuid REFERENCES persons (person_id) ON UPDATE CASCADE,
    company_id         uuid REFERENCES companies (id) ON DELETE SET NULL,
    amount             numeric(14, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
    currency           text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    pipeline_id        uuid NOT NULL,
    stage_id           uuid NOT NULL,
    expected_close_on  date,
    owner_id           uuid REFERENCES users (id) ON DELETE SET NULL,
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    close_reason       text,
    closed_at          timestamptz,
    stage_at           timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (pipeline_id, stage_id) REFERENCES pipeline_stages (pipeline_id, id),
    CHECK (person_id IS NOT NULL OR company_id IS NOT NULL),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
-- The board: a pipeline's column, soonest close first, with the amount for the column's totals (index-only).
CREATE INDEX deals_board ON deals (pipeline_id, stage_id, expected_close_on, id) INCLUDE (amount, currency);
CREATE INDEX deals_person ON deals (person_id) WHERE person_id IS NOT NULL;
CREATE INDEX deals_company ON deals (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX deals_owner ON deals (owner_id, status);
CREATE INDEX deals_closed ON deals (closed_at) WHERE closed_at IS NOT NULL;

CREATE TABLE deal_stage_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deal_id        uuid NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    from_stage_id  uuid REFERENCES pipeline_stages (id) ON DELETE SET NULL,
    to_stage_id    uuid REFERENCES pipeline_stages (id) ON DELETE SET NULL,
    from_stage     text,                             -- names as they were, so a renamed stage keeps its history
    to_stage       text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,                    -- the caller's label (user:<id>, token:<name>)
    reason         text
);
CREATE INDEX deal_stage_history_deal ON deal_stage_history (deal_id, at DESC);

CREATE TABLE tasks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    notes          text,
    due_at         timestamptz NOT NULL,
    snoozed_until  timestamptz,
    owner_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    person_id      uuid REFERENCES persons (person_id) ON UPDATE CASCADE,
    company_id     uuid REFERENCES companies (id) ON DELETE CASCADE,
    deal_id        uuid REFERENCES deals (id) ON DELETE CASCADE,
    done_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Open tasks per owner by when they are due (snoozed ones by the end of their snooze).
CREATE INDEX tasks_open ON tasks (owner_id, (greatest(due_at, snoozed_until))) WHERE done_at IS NULL;
CREATE INDEX tasks_person ON tasks (person_id) WHERE person_id IS NOT NULL;
CREATE INDEX tasks_deal ON tasks (deal_id) WHERE deal_id IS NOT NULL;
CREATE INDEX tasks_company ON tasks (company_id) WHERE company_id IS NOT NULL;

-- Teams for round robin: turn counts the leads the team was given; the next goes to member number turn mod n
-- (members in a fixed order), taken with UPDATE … RETURNING, which holds the row lock to commit.
CREATE TABLE teams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    turn        bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE team_members (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, user_id)
);

-- Rules in position order; the first whose conditions all hold (an empty condition holds always) gives the lead
-- to its user, or to its team's next member.
CREATE TABLE assignment_rules (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position    integer NOT NULL DEFAULT 100,
    country     text,                                -- the person's country (case-insensitive)
    form_key    text,                                -- the form that made the lead
    team_id     uuid REFERENCES teams (id) ON DELETE CASCADE,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((team_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX assignment_rules_active ON assignment_rules (position) WHERE active;
