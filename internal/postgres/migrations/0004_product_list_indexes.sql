-- 0004: indexes for a product's licenses listed by creation (billing
-- reconciliation) or by stop date (what ends next). Without them a page of
-- filter[product_id]&sort=created_at or sort=stop_date sorts every license
-- of the product (issue 4's benchmark on SQLite: p99 392 ms deep in a
-- 57k-license product at 1M; 6.4 ms with them). Each index costs writes
-- (four such indexes cost 18 % of CreateLicense and 27 % of batch-create
-- throughput on SQLite at 100k in one measurement), so start_date
-- and expiry_date, rarer orders for one product, have none. A user's
-- licenses are few, so user_id needs no such indexes.

CREATE INDEX licenses_live_product_created_at ON licenses (product_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_product_stop_date ON licenses (product_id, (COALESCE(stop_date, 9223372036854775807)), id) WHERE deleted_at IS NULL;
