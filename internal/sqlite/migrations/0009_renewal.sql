-- 0009: recurring renewal (licensor.RenewalState). A license is renewed by
-- a successor, a new license whose renewed_from names it; the predecessor
-- records its renewal state and, once renewed, its successor (renewed_by).
-- A product may override the deployment's renewal mode.
ALTER TABLE products ADD COLUMN renewal_mode TEXT CHECK (renewal_mode IN ('automatic', 'notify'));

ALTER TABLE licenses ADD COLUMN renewal TEXT CHECK (renewal IN ('PENDING', 'DUE', 'RENEWED', 'CANCELLED', 'LAPSED'));
ALTER TABLE licenses ADD COLUMN renewed_from INTEGER;
ALTER TABLE licenses ADD COLUMN renewed_by INTEGER;

-- Renewals start with this version: the recurring ACTIVE licenses whose
-- expiry_date is still ahead wait for theirs; those past it (and every
-- license already EXPIRED) were the BSS's to renew before.
UPDATE licenses SET renewal = 'PENDING'
WHERE deleted_at IS NULL AND status = 'ACTIVE' AND recurring = 1
    AND stop_date IS NOT NULL AND expiry_date IS NOT NULL AND expiry_date > unixepoch();

-- A license has at most one live successor: the database, not the code,
-- makes each renewal happen once.
CREATE UNIQUE INDEX licenses_live_renewed_from ON licenses (renewed_from)
    WHERE renewed_from IS NOT NULL AND deleted_at IS NULL;

-- The renewer looks for the earliest expiry_date of pending renewals.
CREATE INDEX licenses_renewal_pending ON licenses (expiry_date, id)
    WHERE renewal = 'PENDING' AND deleted_at IS NULL;
-- The same per product, for the products whose mode is not the
-- deployment's (their pending renewals are found without walking the
-- others').
CREATE INDEX licenses_renewal_pending_product ON licenses (product_id, expiry_date, id)
    WHERE renewal = 'PENDING' AND deleted_at IS NULL;
