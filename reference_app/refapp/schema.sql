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
    enqueued_at     timestamptz NOT NULL DEFAULT now(),  -- committed (into the outbox)
    relayed_at      timestamptz,                          -- sent to the broker; NULL: not yet
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_submission ON jobs (submission_id);
CREATE INDEX IF NOT EXISTS jobs_status_enqueued ON jobs (status, enqueued_at);

-- The transactional outbox (refapp.outbox): a job row with relayed_at NULL is waiting for a
-- relay to send it to the broker. A database from before the outbox gets the column with
-- its existing rows marked relayed (their web tier enqueued them; the sweep covers the rest).
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS relayed_at timestamptz DEFAULT now();
ALTER TABLE jobs ALTER COLUMN relayed_at DROP DEFAULT;
CREATE INDEX IF NOT EXISTS jobs_outbox ON jobs (enqueued_at) WHERE relayed_at IS NULL;
-- Wakes the relays when such a row commits (a notification is delivered only on commit;
-- several in one transaction are delivered once).
CREATE OR REPLACE FUNCTION jobs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('refapp_outbox', '');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS jobs_outbox_notify ON jobs;
CREATE TRIGGER jobs_outbox_notify AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.relayed_at IS NULL) EXECUTE FUNCTION jobs_outbox_notify();

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
