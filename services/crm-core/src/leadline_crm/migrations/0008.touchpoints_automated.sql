-- A touchpoint made by a machine acting on nobody's behalf (a crawler, a mail gateway's link scanner, a mail
-- provider's image proxy; lifecycle.automated decides from the enricher's bot findings). It stays in the
-- history and on the timeline, marked, but never scores, never counts as a visit or a click and never moves
-- a stage: not when it is ingested, and not when a merge recomputes a person from the history.
-- depends: 0007.persons_known
ALTER TABLE touchpoints ADD COLUMN automated boolean NOT NULL DEFAULT false;
