-- 0002: idempotency keys. The first response to a POST carrying an
-- Idempotency-Key is kept here, per API key, and replayed to repeats. A
-- write's response is stored in the write's own transaction.

CREATE TABLE idempotency_keys (
    api_key_id      INTEGER NOT NULL,
    idempotency_key TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL, -- method, path, query and body of the first request
    started_at      INTEGER NOT NULL, -- when the current holder claimed it
    expires_at      INTEGER NOT NULL,
    completed_at    INTEGER,          -- NULL while a request holds the key
    status          INTEGER,
    headers         TEXT,             -- JSON object
    body            BLOB,
    PRIMARY KEY (api_key_id, idempotency_key)
) STRICT;

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
