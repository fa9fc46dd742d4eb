-- Outbound webhooks (issue 16): subscriptions and their deliveries, an outbox of HTTP POSTs. A delivery row is
-- written in the transaction that consumes the domain event (or runs the workflow action), so it exists exactly
-- when its cause committed; the dispatcher sends it at least once and keeps its log.
-- depends: 0042.deal_totals

-- secret / previous_secret: "whsec_<base64>" (they must be readable to sign). During a rotation's overlap both
-- sign (previous_secret_expires_at). allowed_network: the admin's escape for a private target (e.g. 10.0.0.0/8);
-- without it private, loopback, link-local and other non-global addresses are refused.
CREATE TABLE webhook_subscriptions (
    id                          serial PRIMARY KEY,
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types                 text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
    enabled                     boolean NOT NULL DEFAULT true,
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    allowed_network             cidr,
    failing_since               timestamptz,
    consecutive_failures        integer NOT NULL DEFAULT 0,
    disabled_at                 timestamptz,
    disabled_reason             text,
    created_by                  text NOT NULL,          -- the actor as the audit log names it
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_types ON webhook_subscriptions USING gin (event_types) WHERE enabled;

-- msg_id is the Standard Webhooks webhook-id, derived from the cause (event type and source key, or the workflow
-- action's key): UNIQUE (subscription_id, msg_id) makes a replay queue nothing twice. A claimed delivery has its
-- next_attempt_at pushed out by a lease: a dispatcher that dies mid-send leaves it due again once the lease ends.
CREATE TABLE webhook_deliveries (
    id                bigserial PRIMARY KEY,
    subscription_id   integer NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    msg_id            text NOT NULL,
    event_type        text NOT NULL,
    payload           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    delivered_at      timestamptz,
    last_status       integer,
    last_response_ms  real,
    last_error        text,
    response_excerpt  text CHECK (octet_length(response_excerpt) <= 500),
    UNIQUE (subscription_id, msg_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id DESC);
