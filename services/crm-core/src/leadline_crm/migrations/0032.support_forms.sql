-- Cases from the outside and the service report (issue 14).
-- * forms.support: a support form's submissions open a case (service/support.py, from ingestion), of the type the
--   visitor chose in a `type` field, else the form's case_type.
-- * cases.event_id: the submission that opened the case; unique, so a redelivered or replayed submission never
--   opens a second one. cases.form_ref: the reference the public support page (/support/{form}) put in the form
--   and in the visitor's cookie, so its thank-you page can show the tracking number once ingestion has opened the
--   case (the collector answers the visitor before crm-core sees the submission, so it cannot know the number).
-- * cases.first_response_at: the first customer-visible comment, kept by service/cases.py, so the report's
--   medians and service-level breaches read one row per case instead of searching the comments of a million.
-- depends: 0031.kb_search_words
ALTER TABLE forms
    ADD COLUMN support boolean NOT NULL DEFAULT false,
    ADD COLUMN case_type text NOT NULL DEFAULT 'question'
        CHECK (case_type IN ('question', 'complaint', 'fault', 'return'));

ALTER TABLE cases
    ADD COLUMN event_id text UNIQUE,
    ADD COLUMN form_ref text UNIQUE,
    ADD COLUMN first_response_at timestamptz;

UPDATE cases c SET first_response_at = f.at
  FROM (SELECT case_id, min(created_at) AS at FROM case_comments WHERE public GROUP BY case_id) AS f
 WHERE f.case_id = c.id;
