-- `unlink` changes: crm-core removed an email or phone from a person (a rep corrected a typo); the graph lets the
-- value go, so the next event carrying it is not put on that person. Announced through the changes outbox.
-- depends: 0003.link-changes-in-outbox
ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
ALTER TABLE changes ADD CONSTRAINT changes_kind_check CHECK (kind IN ('merge', 'link', 'unlink', 'erase'));
