-- The CRM model on top of the touchpoints: who a person is, where they stand (lifecycle, score), what was sold
-- to them and who talked to them; plus the marketing catalogue (campaigns, ads, affiliates, forms, sources).
-- depends: 0001.touchpoints

-- Reps and other users; API tokens may belong to one, so a rep's actions name the rep.
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'sales', 'marketing', 'service', 'read_only')),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE api_tokens ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE SET NULL;

-- Who the person is. emails/phones hold every known value (lower-cased email, E.164 phone);
-- the signals after `attributes` feed the lifecycle (see lifecycle.py) and are recomputed after a merge.
ALTER TABLE persons
    ADD COLUMN first_name      text,
    ADD COLUMN last_name       text,
    ADD COLUMN emails          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN phones          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN user_ids        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN company         text,
    ADD COLUMN country         text,
    ADD COLUMN region          text,
    ADD COLUMN age_band        text,
    ADD COLUMN gender          text,
    ADD COLUMN industry        text,
    ADD COLUMN company_size    text,
    ADD COLUMN source          text,
    ADD COLUMN attributes      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN stage           text NOT NULL DEFAULT 'anonymous'
        CHECK (stage IN ('anonymous', 'lead', 'prospect', 'customer', 'lost', 'disqualified')),
    ADD COLUMN stage_at        timestamptz,
    ADD COLUMN score           double precision NOT NULL DEFAULT 0,
    ADD COLUMN score_at        timestamptz,
    ADD COLUMN identified      boolean NOT NULL DEFAULT false,
    ADD COLUMN clicked         boolean NOT NULL DEFAULT false,
    ADD COLUMN rep_contacted   boolean NOT NULL DEFAULT false,
    ADD COLUMN visit_days      integer NOT NULL DEFAULT 0,
    ADD COLUMN last_visit_day  date,
    ADD COLUMN purchases       integer NOT NULL DEFAULT 0,
    ADD COLUMN erased_at       timestamptz,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
CREATE INDEX persons_emails ON persons USING gin (emails);
CREATE INDEX persons_phones ON persons USING gin (phones);
CREATE INDEX persons_stage ON persons (stage, person_id);

-- A person merged into another: late events that still carry the old id land on the survivor.
CREATE TABLE person_merges (
    old_id      uuid PRIMARY KEY,
    person_id   uuid NOT NULL,
    change_id   text NOT NULL,
    merged_at   timestamptz NOT NULL DEFAULT now()
);

-- Identity changes already applied (idempotent replays of identity.changes.v1).
CREATE TABLE identity_changes (
    change_id   text PRIMARY KEY,
    kind        text NOT NULL,
    person_id   uuid NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Every stage move with its cause: the event that caused it, or the rep/user and their reason.
CREATE TABLE stage_transitions (
    id              bigserial PRIMARY KEY,
    person_id       uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    from_stage      text NOT NULL,
    to_stage        text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    cause_event_id  text,
    cause_user      text,
    reason          text NOT NULL
);
CREATE INDEX stage_transitions_person ON stage_transitions (person_id, at DESC, id DESC);

-- Lead scoring: points per matching event, decayed with a half-life; one settings row.
CREATE TABLE score_rules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL,
    event_type    text NOT NULL,
    url_contains  text,
    points        double precision NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO score_rules (name, event_type, url_contains, points) VALUES
    ('form submit', 'form_submit', NULL, 20),
    ('pricing page view', 'page_view', '/pricing', 10),
    ('email click', 'link_click', NULL, 5);

CREATE TABLE scoring (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    half_life_days      double precision NOT NULL DEFAULT 30 CHECK (half_life_days > 0),
    prospect_threshold  double precision NOT NULL DEFAULT 50,
    repeat_visit_days   integer NOT NULL DEFAULT 3 CHECK (repeat_visit_days > 0)
);
INSERT INTO scoring DEFAULT VALUES;

-- Custom person attributes an admin defines; PATCH and lead entry validate against them.
CREATE TABLE field_definitions (
    name        text PRIMARY KEY,
    label       text NOT NULL,
    type        text NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'date', 'choice')),
    choices     jsonb NOT NULL DEFAULT '[]',
    required    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Marketing catalogue.
CREATE TABLE campaigns (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    channel      text NOT NULL DEFAULT 'email',
    landing_url  text,
    starts_on    date,
    ends_on      date,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE affiliates (
    affiliate_id  text PRIMARY KEY,
    name          text NOT NULL,
    landing_url   text,
    contact_email text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ads (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    affiliate_id text NOT NULL REFERENCES affiliates (affiliate_id) ON DELETE CASCADE ON UPDATE CASCADE,
    ad_id        text NOT NULL,
    name         text NOT NULL DEFAULT '',
    landing_url  text NOT NULL,
    campaign_id  uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    creative     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (affiliate_id, ad_id)
);

CREATE TABLE forms (
    key              text PRIMARY KEY,
    name             text NOT NULL DEFAULT '',
    fields           jsonb NOT NULL,
    required         jsonb NOT NULL DEFAULT '["email"]',
    allowed_origins  jsonb NOT NULL DEFAULT '[]',
    thank_you_url    text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sources (
    write_key   text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    settings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_sends (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id   uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    person_id     uuid REFERENCES persons (person_id) ON UPDATE CASCADE ON DELETE SET NULL,
    subject       text NOT NULL DEFAULT '',
    sent_at       timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_sends_person ON email_sends (person_id);

-- Sales.
CREATE TABLE products (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL,
    list_price  numeric(14, 2) NOT NULL CHECK (list_price >= 0),
    currency    text NOT NULL DEFAULT 'EUR',
    info        text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE purchases (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id             uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    product_id            uuid NOT NULL REFERENCES products (id),
    quantity              integer NOT NULL CHECK (quantity > 0),
    purchased_on          date NOT NULL DEFAULT current_date,
    sales_rep             uuid REFERENCES users (id) ON DELETE SET NULL,
    price_paid            numeric(14, 2) NOT NULL CHECK (price_paid >= 0),
    special_instructions  text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchases_person ON purchases (person_id, created_at DESC);

CREATE TABLE feedback (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id   uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    rating      integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    text        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_person ON feedback (person_id, created_at DESC);

CREATE TABLE activities (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id   uuid NOT NULL REFERENCES persons (person_id) ON UPDATE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('site_visit', 'phone_call', 'meeting', 'note', 'email')),
    rep_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text,
    notes       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_person ON activities (person_id, at DESC);
