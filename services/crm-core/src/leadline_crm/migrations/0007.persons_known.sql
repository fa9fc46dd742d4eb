-- The person list shows known people by default (anonymous visitors only on request), newest first. Nearly every
-- person is an anonymous visitor, so that list reads this partial index instead of walking past all of them.
-- The predicate is queries.KNOWN word for word: the planner uses the index only for a query that implies it.
-- depends: 0006.outbox_dead
CREATE INDEX persons_known ON persons (person_id)
    WHERE identified OR stage <> 'anonymous' OR emails <> '{}' OR phones <> '{}' OR user_ids <> '{}'
          OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL;
