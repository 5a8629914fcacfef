-- Idempotent, applied once per version of this file (refapp.migration).
CREATE TABLE IF NOT EXISTS submissions (
    id          uuid PRIMARY KEY,
    user_id     bigint      NOT NULL,
    title       text        NOT NULL,
    content     text        NOT NULL,
    priority    text        NOT NULL DEFAULT 'default',   -- high | default | low (queue tier)
    status      text        NOT NULL DEFAULT 'pending',   -- pending | analysed | rendered | failed
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
-- GET /api/users/{id}/submissions: keyset pagination on (created_at, id) per user.
CREATE INDEX IF NOT EXISTS submissions_user_keyset
    ON submissions (user_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- GET /api/stats aggregates by status; cleanup finds soft-deleted rows.
CREATE INDEX IF NOT EXISTS submissions_status ON submissions (status) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS submissions_deleted ON submissions (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS jobs (
    id              uuid PRIMARY KEY,
    submission_id   uuid        NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    kind            text        NOT NULL,                 -- analyse | render | cleanup
    status          text        NOT NULL DEFAULT 'queued', -- queued | running | done | failed | dead
    attempts        integer     NOT NULL DEFAULT 0,
    completions     integer     NOT NULL DEFAULT 0,       -- exactly-once evidence: must end at 1
    result          jsonb,
    error           text,
    enqueued_at     timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_submission ON jobs (submission_id);
CREATE INDEX IF NOT EXISTS jobs_status_enqueued ON jobs (status, enqueued_at);

CREATE TABLE IF NOT EXISTS analyses (
    submission_id   uuid PRIMARY KEY REFERENCES submissions (id) ON DELETE CASCADE,
    job_id          uuid        NOT NULL,
    word_count      integer     NOT NULL,
    unique_words    integer     NOT NULL,
    top_terms       jsonb       NOT NULL,
    readability     double precision NOT NULL,
    digest          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reports (
    submission_id   uuid PRIMARY KEY REFERENCES submissions (id) ON DELETE CASCADE,
    job_id          uuid        NOT NULL,
    html            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- API keys (refapp.keys mints them, refapp.auth resolves them): only the SHA-256 of a key
-- is stored, with its first characters so an operator can name it. Each maps to one user
-- (the owner of what it creates) and one tier (rate limits and load shedding).
CREATE TABLE IF NOT EXISTS api_keys (
    id          bigserial PRIMARY KEY,
    key_hash    bytea       NOT NULL UNIQUE,
    prefix      text        NOT NULL,
    user_id     bigint      NOT NULL CHECK (user_id > 0),
    tier        text        NOT NULL CHECK (tier IN ('premium', 'basic', 'free')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys (prefix);
