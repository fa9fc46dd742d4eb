-- Accounts of the web app (issue 12; architecture.md §10): users sign in with email and password (argon2id
-- hashes), server-side sessions (only a SHA-256 of the session id is stored), failed sign-ins counted per account
-- and per client address, one-time password-set links (stored hashed), and an id for each API token so the UI
-- can revoke it.
-- depends: 0009.persons_title_address
ALTER TABLE users ADD COLUMN password_hash text;
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE sessions (
    id_hash       bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf          text NOT NULL,                  -- the synchronizer token of this session's forms
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),   -- idle expiry
    expires_at    timestamptz NOT NULL                  -- absolute expiry
);
CREATE INDEX sessions_user ON sessions (user_id);

-- One row per throttled key: 'account:<email as typed, canonical>' or 'ip:<address>'.
CREATE TABLE login_failures (
    key           text PRIMARY KEY,
    failures      integer NOT NULL,
    last_at       timestamptz NOT NULL,
    locked_until  timestamptz
);

CREATE TABLE password_links (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

ALTER TABLE api_tokens ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX api_tokens_id ON api_tokens (id);
