-- 0006: sessions of the operator console (internal/console). id is the
-- SHA-256 (hex) of the cookie's token; the token itself is never stored.
-- A session dies with its key (the console also checks the key's
-- revocation and expiry on every request).
CREATE TABLE console_sessions (
    id         TEXT   PRIMARY KEY,
    key_id     BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key_prefix TEXT   NOT NULL,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
CREATE INDEX console_sessions_seen_at ON console_sessions (seen_at);
