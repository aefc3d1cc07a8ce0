-- 0011: the index of a user's live licenses also holds what the
-- entitlement cache reads of them (Store.FindGrants, FindUsersGrants,
-- ListGrants: status, product, dates), so that loading a user can be an
-- index-only scan rather than a visit of each license's row. It keeps its
-- name and its key (user_id, id): a user's license list uses it as before.
-- The new index is built before the old one is dropped, so reads go on
-- meanwhile; writes to licenses wait for the build (docs/operations.md,
-- "Rolling upgrades with migrations").
CREATE INDEX licenses_live_user_grants ON licenses (user_id, id) INCLUDE (status, product_id, start_date, stop_date)
    WHERE deleted_at IS NULL;
DROP INDEX licenses_live_user_id;
ALTER INDEX licenses_live_user_grants RENAME TO licenses_live_user_id;
