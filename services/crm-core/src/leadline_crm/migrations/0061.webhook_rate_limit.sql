-- A per-subscription rate limit on dispatch (issue 16): at most rate_limit deliveries a second to one receiver
-- (with a burst of one second's worth), so one hot subscription's backlog cannot hold the dispatcher while the
-- others wait. The claim looks into each enabled subscription's own due deliveries (this index), taking no more
-- than the subscription may send now.
-- depends: 0060.webhook_secrets_sealed
ALTER TABLE webhook_subscriptions
    ADD COLUMN rate_limit real NOT NULL DEFAULT 100 CHECK (rate_limit > 0 AND rate_limit <= 10000);
CREATE INDEX webhook_deliveries_due_per_subscription ON webhook_deliveries (subscription_id, next_attempt_at)
    WHERE status IN ('pending', 'failed');
