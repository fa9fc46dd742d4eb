-- Conflicts are announced on identity.changes.v1 (kind `conflict`: the event's person, the `other` one, the
-- identifier's type and the `event_id`), through the changes outbox like merges; a merge a rep asked for from
-- crm-core names the request (`event_id`). Neither carries an identifier's value (issue 12).
-- depends: 0004.unlink-changes
ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
ALTER TABLE changes ADD CONSTRAINT changes_kind_check
    CHECK (kind IN ('merge', 'link', 'unlink', 'erase', 'conflict'));
ALTER TABLE changes ADD COLUMN other uuid;
ALTER TABLE changes ADD COLUMN event_id text;
ALTER TABLE conflicts ADD COLUMN resolution text;  -- 'merged' by a rep's request (resolved_at set)
