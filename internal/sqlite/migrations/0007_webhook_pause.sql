-- 0007: a webhook may be paused. paused_at is when it was paused, NULL while
-- it is active. The events of a paused webhook are still queued as
-- deliveries (its cursor moves on), but none is claimed until it is resumed.
ALTER TABLE webhooks ADD COLUMN paused_at INTEGER;
