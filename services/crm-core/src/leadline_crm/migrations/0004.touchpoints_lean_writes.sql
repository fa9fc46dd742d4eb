-- Touchpoints are the one table written at event rate; two per-row costs are dropped there:
-- * the foreign key to persons: its per-row check was a fifth of the cost of storing a touchpoint. The writer
--   keeps the rule instead: ingestion upserts a batch's persons before its touchpoints in the same
--   transaction, and a merge re-points touchpoints before it deletes the merged persons.
-- * JSON validation of the event: it is the exact text ingestion has just parsed (and refused when invalid),
--   so it is stored as text and read as json where a statement looks inside it.
ALTER TABLE touchpoints DROP CONSTRAINT IF EXISTS touchpoints_person_id_fkey;
ALTER TABLE touchpoints ALTER COLUMN event TYPE text;
