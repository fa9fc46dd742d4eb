-- CSV import of people, companies and deals (issue 15): one row per import job, kept so a page can poll its
-- progress and a report can list what was refused. The uploaded file is kept in the job (content) between the
-- steps of the web app (upload, mapping, dry run, run) and dropped once the import has run. Rejected rows keep
-- their line number, the reason and the raw line (capped), for the downloadable report.
-- depends: 0042.deal_totals

CREATE TABLE import_jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind          text NOT NULL CHECK (kind IN ('people', 'companies', 'deals')),
    mode          text NOT NULL DEFAULT 'dry_run' CHECK (mode IN ('dry_run', 'commit')),
    on_duplicate  text NOT NULL DEFAULT 'skip' CHECK (on_duplicate IN ('update', 'skip')),
    status        text NOT NULL DEFAULT 'uploaded'
                  CHECK (status IN ('uploaded', 'queued', 'running', 'done', 'failed')),
    filename      text NOT NULL DEFAULT '',
    delimiter     text NOT NULL,
    header        text[] NOT NULL,
    mapping       jsonb NOT NULL DEFAULT '{}',
    content       bytea,
    total         integer NOT NULL DEFAULT 0,
    processed     integer NOT NULL DEFAULT 0,
    created       integer NOT NULL DEFAULT 0,
    updated       integer NOT NULL DEFAULT 0,
    skipped       integer NOT NULL DEFAULT 0,
    rejected      integer NOT NULL DEFAULT 0,
    error         text,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    actor         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX import_jobs_recent ON import_jobs (created_at DESC);

CREATE TABLE import_rejects (
    job_id  uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line    integer NOT NULL,
    reason  text NOT NULL,
    raw     text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, line)
);
