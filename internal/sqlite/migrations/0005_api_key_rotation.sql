-- API key names are unique among the keys not revoked (revoked_at IS NULL)
-- only: a revoked name can be used again, and a rotation keeps the old key
-- (revoked at the end of its grace period) next to its successor.
CREATE TABLE api_keys_new (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL UNIQUE,
    hash         BLOB    NOT NULL,
    scope        TEXT    NOT NULL,
    networks     TEXT    NOT NULL DEFAULT '', -- comma-separated CIDR prefixes; '' = anywhere
    expires_at   INTEGER,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER, -- may lie in the future: the end of a rotation's grace period
    last_used_at INTEGER
) STRICT;
INSERT INTO api_keys_new (id, name, prefix, hash, scope, networks, expires_at, created_at, revoked_at, last_used_at)
SELECT id, name, prefix, hash, scope, networks, expires_at, created_at, revoked_at, last_used_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE UNIQUE INDEX api_keys_name_key ON api_keys (name) WHERE revoked_at IS NULL;
