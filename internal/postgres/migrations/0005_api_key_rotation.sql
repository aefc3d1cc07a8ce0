-- API key names are unique among the keys not revoked (revoked_at IS NULL)
-- only: a revoked name can be used again, and a rotation keeps the old key
-- (revoked at the end of its grace period, which may lie in the future)
-- next to its successor.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_name_key;
CREATE UNIQUE INDEX api_keys_name_key ON api_keys (name) WHERE revoked_at IS NULL;
