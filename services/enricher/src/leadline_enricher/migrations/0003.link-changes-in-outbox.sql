-- `link` changes (a known email, phone or user_id joined an existing person) go through the changes outbox like
-- merges: written in the graph's transaction, published again after a crash if their Kafka transaction was lost.
-- depends: 0002.merges-conflicts-tombstones
ALTER TABLE changes ADD COLUMN identifier jsonb;  -- {"type": ..., "value": ...} of a link change
