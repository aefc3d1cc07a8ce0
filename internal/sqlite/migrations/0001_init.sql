-- 0001: products, licenses and API keys.
--
-- Times are unix seconds. Rows are never removed: a deletion sets
-- deleted_at (a tombstone), and every read filters on deleted_at IS NULL,
-- which is why the indexes serving reads are partial on that predicate.

CREATE TABLE products (
    id             INTEGER PRIMARY KEY,
    title          TEXT    NOT NULL,
    title_lower    TEXT    NOT NULL, -- strings.ToLower(title), computed in Go
    description    TEXT    NOT NULL DEFAULT '',
    type           TEXT    NOT NULL,
    is_premium     INTEGER NOT NULL CHECK (is_premium IN (0, 1)),
    is_buyable     INTEGER NOT NULL CHECK (is_buyable IN (0, 1)),
    is_visible     INTEGER NOT NULL CHECK (is_visible IN (0, 1)),
    recurring      INTEGER NOT NULL CHECK (recurring IN (0, 1)),
    price_amount   INTEGER,
    price_currency TEXT,
    license_period TEXT,
    channels       TEXT    NOT NULL DEFAULT '{}', -- JSON: {"live": ["c1", ...], ...}
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    deleted_at     INTEGER,
    deleted_by     TEXT
) STRICT;

CREATE INDEX products_live_title ON products (title, id) WHERE deleted_at IS NULL;
CREATE INDEX products_live_created_at ON products (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE licenses (
    id                 INTEGER PRIMARY KEY,
    user_id            TEXT    NOT NULL,
    product_id         INTEGER NOT NULL REFERENCES products (id),
    status             TEXT    NOT NULL,
    start_date         INTEGER NOT NULL,
    stop_date          INTEGER,
    order_id           TEXT,
    recurring          INTEGER NOT NULL CHECK (recurring IN (0, 1)),
    expiry_date        INTEGER,
    price_amount       INTEGER,
    price_currency     TEXT,
    purchase_timestamp INTEGER NOT NULL,
    payment_method     TEXT,
    created_at         INTEGER NOT NULL,
    deleted_at         INTEGER,
    deleted_by         TEXT,
    deleted_request_id TEXT
) STRICT;

-- The database, not the code, guarantees that a live order_id is unique.
CREATE UNIQUE INDEX licenses_live_order_id ON licenses (order_id) WHERE deleted_at IS NULL;

CREATE INDEX licenses_live_user_id ON licenses (user_id, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_product_id ON licenses (product_id, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_created_at ON licenses (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_start_date ON licenses (start_date, id) WHERE deleted_at IS NULL;
-- A missing stop or expiry date sorts as MaxInt64 ("never") on every engine.
CREATE INDEX licenses_live_stop_date ON licenses (COALESCE(stop_date, 9223372036854775807), id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_expiry_date ON licenses (COALESCE(expiry_date, 9223372036854775807), id) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL UNIQUE,
    hash         BLOB    NOT NULL,
    scope        TEXT    NOT NULL,
    networks     TEXT    NOT NULL DEFAULT '', -- comma-separated CIDR prefixes; '' = anywhere
    expires_at   INTEGER,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;
