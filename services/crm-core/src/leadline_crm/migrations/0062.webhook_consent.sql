-- Webhook payloads respect consent (issue 16). A subscription says what its receiver is for: 'operations' (a
-- sales, support or finance tool: deliveries carry ids and changed fields, never contact data, as before) or
-- 'marketing' (an e-mail, ads or nurture tool): that one gets nothing about a person who has not granted marketing
-- consent (persons.consent, migration 0033; never stated counts as not granted, as for e-mails). Checked when a
-- delivery is queued and again when it is sent, so a withdrawal also stops what was queued or is being retried;
-- person_id lets the dispatcher look.
-- depends: 0061.webhook_rate_limit
ALTER TABLE webhook_subscriptions
    ADD COLUMN purpose text NOT NULL DEFAULT 'operations' CHECK (purpose IN ('operations', 'marketing'));
ALTER TABLE webhook_deliveries ADD COLUMN person_id uuid;
