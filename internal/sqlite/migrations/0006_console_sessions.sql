-- 0006: sessions of the operator console (internal/console). id is the
-- SHA-256 (hex) of the cookie's token; the token itself is never stored.
-- A session dies with its key (the console also checks the key's
-- revocation and expiry on every request).
CREATE TABLE console_sessions (
    id         TEXT    PRIMARY KEY,
    key_id     INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key_prefix TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
CREATE INDEX console_sessions_seen_at ON console_sessions (seen_at);
