-- Consent per person (issue 14): for each purpose (marketing, analytics) whether it is granted, when, and from where
-- (form: a form's checkbox; snippet: the site's consent call; agent: a user in crm-core; api: a program), e.g.
-- {"marketing": {"granted": true, "at": "2026-11-30T10:00:00+00:00", "source": "form"}}. A newer statement wins,
-- per purpose (people/consent.py). On the person's row, so an export carries it with the profile and a merge keeps
-- the survivor's; no history here: each change is in the audit log (agents, programs) or the touchpoints (events).
-- depends: 0032.support_forms
ALTER TABLE persons ADD COLUMN consent jsonb NOT NULL DEFAULT '{}';
