-- The delivery log is kept for 30 days once a delivery is finished (delivered or given up); the dispatcher deletes
-- older ones hourly through this index (issue 16).
-- depends: 0055.webhooks
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE status IN ('delivered', 'dead');
