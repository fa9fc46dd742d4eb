-- Automation (issue 16): domain events written in the transaction of the change they announce (a transactional
-- inbox, read and deleted by the automation loop), workflow rules and their runs, static lists and notices.
-- depends: 0042.deal_totals 0031.kb_search_words

-- source_key names the cause (a Kafka event_id, 'deal:<id>:stage:<stage>'...): a replayed cause inserts nothing.
-- chain: the rules whose actions caused the event (a rule never runs on its own effects).
CREATE TABLE domain_events (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL,
    person_id    uuid,
    subject      text,
    data         jsonb NOT NULL DEFAULT '{}',
    source_key   text NOT NULL,
    chain        int[] NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, source_key)
);

CREATE TABLE workflow_rules (
    id              serial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled         boolean NOT NULL DEFAULT false,
    trigger_type    text NOT NULL,
    trigger_params  jsonb NOT NULL DEFAULT '{}',
    conditions      jsonb NOT NULL DEFAULT '[]',
    actions         jsonb NOT NULL DEFAULT '[]',
    delay_seconds   integer NOT NULL DEFAULT 0 CHECK (delay_seconds >= 0),
    unless_activity text,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One run per (rule, triggering event): a replayed event finds its run and does nothing twice. 'waiting' runs
-- are the delayed ones, picked by the loop once due_at has passed; 'running' lives only inside the transaction that
-- carries the run out.
CREATE TABLE rule_runs (
    id            bigserial PRIMARY KEY,
    rule_id       integer NOT NULL REFERENCES workflow_rules (id) ON DELETE CASCADE,
    trigger_key   text NOT NULL,
    event_type    text NOT NULL,
    person_id     uuid,
    subject       text,
    data          jsonb NOT NULL DEFAULT '{}',
    chain         int[] NOT NULL DEFAULT '{}',
    status        text NOT NULL CHECK (status IN ('done', 'waiting', 'running', 'skipped', 'stopped', 'failed')),
    due_at        timestamptz,
    reason        text,
    actions_done  jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (rule_id, trigger_key)
);
CREATE INDEX rule_runs_due ON rule_runs (due_at) WHERE status = 'waiting';
CREATE INDEX rule_runs_person ON rule_runs (person_id, id DESC) WHERE person_id IS NOT NULL;
CREATE INDEX rule_runs_rule ON rule_runs (rule_id, id DESC);

CREATE TABLE lists (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE list_members (
    list_id    integer NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    person_id  uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, person_id)
);
CREATE INDEX list_members_person ON list_members (person_id);

CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        text NOT NULL,
    link        text,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_unread ON notifications (user_id, id DESC) WHERE read_at IS NULL;

-- The cases whose breach of their service level was announced (case.breached once per case).
CREATE TABLE case_breaches (
    case_id      uuid PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
    breached_at  timestamptz NOT NULL DEFAULT now()
);
