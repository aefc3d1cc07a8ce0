-- 0001: products, licenses and API keys.
--
-- Times are unix seconds. Rows are never removed: a deletion sets
-- deleted_at (a tombstone), and every read filters on deleted_at IS NULL,
-- which is why the indexes serving reads are partial on that predicate.

CREATE TABLE products (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- COLLATE "C": titles sort bytewise, exactly as on SQLite (BINARY).
    title          TEXT    COLLATE "C" NOT NULL,
    title_lower    TEXT    NOT NULL, -- strings.ToLower(title), computed in Go
    description    TEXT    NOT NULL DEFAULT '',
    type           TEXT    NOT NULL,
    is_premium     BOOLEAN NOT NULL,
    is_buyable     BOOLEAN NOT NULL,
    is_visible     BOOLEAN NOT NULL,
    recurring      BOOLEAN NOT NULL,
    price_amount   BIGINT,
    price_currency TEXT,
    license_period TEXT,
    channels       TEXT    NOT NULL DEFAULT '{}', -- JSON: {"live": ["c1", ...], ...}
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    version        BIGINT  NOT NULL,
    deleted_at     BIGINT,
    deleted_by     TEXT
);

CREATE INDEX products_live_title ON products (title, id) WHERE deleted_at IS NULL;
CREATE INDEX products_live_created_at ON products (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE licenses (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id            TEXT    NOT NULL,
    product_id         BIGINT  NOT NULL REFERENCES products (id),
    status             TEXT    NOT NULL,
    start_date         BIGINT  NOT NULL,
    stop_date          BIGINT,
    order_id           TEXT,
    recurring          BOOLEAN NOT NULL,
    expiry_date        BIGINT,
    price_amount       BIGINT,
    price_currency     TEXT,
    purchase_timestamp BIGINT  NOT NULL,
    payment_method     TEXT,
    created_at         BIGINT  NOT NULL,
    deleted_at         BIGINT,
    deleted_by         TEXT,
    deleted_request_id TEXT
);

-- The database, not the code, guarantees that a live order_id is unique.
CREATE UNIQUE INDEX licenses_live_order_id ON licenses (order_id) WHERE deleted_at IS NULL;

CREATE INDEX licenses_live_user_id ON licenses (user_id, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_product_id ON licenses (product_id, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_created_at ON licenses (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_start_date ON licenses (start_date, id) WHERE deleted_at IS NULL;
-- A missing stop or expiry date sorts as MaxInt64 ("never") on every engine.
CREATE INDEX licenses_live_stop_date ON licenses ((COALESCE(stop_date, 9223372036854775807)), id) WHERE deleted_at IS NULL;
CREATE INDEX licenses_live_expiry_date ON licenses ((COALESCE(expiry_date, 9223372036854775807)), id) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT    NOT NULL CONSTRAINT api_keys_name_key UNIQUE,
    prefix       TEXT    NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    hash         BYTEA   NOT NULL,
    scope        TEXT    NOT NULL,
    networks     TEXT    NOT NULL DEFAULT '', -- comma-separated CIDR prefixes; '' = anywhere
    expires_at   BIGINT,
    created_at   BIGINT  NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
