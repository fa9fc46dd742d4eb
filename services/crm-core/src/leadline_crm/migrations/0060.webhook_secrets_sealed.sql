-- Webhook signing secrets are encrypted at rest (issue 16): from here on secret and previous_secret hold Fernet
-- tokens sealed with LEADLINE_WEBHOOK_KEYS (webhooks/sealing.py), never a "whsec_…" secret as it is. SQL cannot
-- encrypt with a key the database must never hold, so the rows written before this migration are sealed by
-- crm-core at its next start-up (sealing.seal_stored, right after the migrations); NOT VALID lets those rows wait
-- for it while every new or changed row is held to the rule at once.
-- depends: 0056.webhook_retention
ALTER TABLE webhook_subscriptions ADD CONSTRAINT webhook_subscriptions_secrets_sealed
    CHECK (secret NOT LIKE 'whsec\_%' AND coalesce(previous_secret, '') NOT LIKE 'whsec\_%') NOT VALID;
