-- 0008: bulk jobs (licensor.BulkJob): an action applied in the background,
-- a chunk per transaction, to every license a filter selects. cursor is
-- the last license id handled, committed with each chunk's changes, so a
-- job resumes where it stopped; claims and lease_until are the current
-- worker's hold on it (a chunk commits only under the current claim).
CREATE TABLE bulk_jobs (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action         TEXT    NOT NULL CHECK (action IN ('delete', 'suspend', 'reinstate')),
    status         TEXT    NOT NULL DEFAULT '', -- the suspension's level ('' = SUSPENDED)
    reason         TEXT    NOT NULL DEFAULT '',
    filter         TEXT    NOT NULL,            -- JSON: licensor.LicenseFilter
    state          TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    until_id       BIGINT  NOT NULL,            -- the largest license id at creation
    cursor         BIGINT  NOT NULL DEFAULT 0,
    matched        BIGINT  NOT NULL,
    processed      BIGINT  NOT NULL DEFAULT 0,
    changed        BIGINT  NOT NULL DEFAULT 0,
    unchanged      BIGINT  NOT NULL DEFAULT 0,
    refused        BIGINT  NOT NULL DEFAULT 0,
    refused_sample TEXT    NOT NULL DEFAULT '[]', -- JSON: [{"id": 1, "code": "..."}]
    error          TEXT    NOT NULL DEFAULT '',
    actor          TEXT    NOT NULL,
    request_id     TEXT    NOT NULL DEFAULT '',
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    lease_until    BIGINT  NOT NULL DEFAULT 0,
    claims         BIGINT  NOT NULL DEFAULT 0
);

-- Workers look for pending jobs; retention prunes finished ones.
CREATE INDEX bulk_jobs_pending ON bulk_jobs (id) WHERE state IN ('queued', 'running');
CREATE INDEX bulk_jobs_finished_at ON bulk_jobs (finished_at) WHERE finished_at IS NOT NULL;
