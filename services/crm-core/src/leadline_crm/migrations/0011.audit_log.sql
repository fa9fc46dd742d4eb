-- Who changed what and when, through the web app or the REST API (issue 12; architecture.md §10). Written by
-- leadline_crm.audit.record in the transaction of the change; never holds a password or a token.
-- depends: 0010.accounts
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,                 -- the user's name, or token:<name> for a program
    actor_user_id  uuid,                          -- no foreign key: the log outlives users
    via            text NOT NULL CHECK (via IN ('ui', 'api', 'cli')),
    action         text NOT NULL,                 -- create, update, delete, or a named action (revoke, …)
    entity_type    text NOT NULL,
    entity_id      text NOT NULL,
    changes        jsonb NOT NULL DEFAULT '{}'    -- {field: [old, new]} on update, {field: value} otherwise
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, at DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, at DESC);
