-- 0003: the change feed (a transactional outbox), webhooks and their
-- deliveries, and an index for exact-time expiry.
--
-- events holds one row per change to a license or a product, written in
-- the change's own transaction. seq is the event's position in commit
-- order, handed out from event_head, whose single row every writing
-- transaction updates last: positions are gap-free and increase with
-- commit order (SQLite has one writer at a time anyway).

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    type       TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    request_id TEXT    NOT NULL DEFAULT '',
    license_id INTEGER,          -- NULL for product events
    product_id INTEGER NOT NULL,
    user_id    TEXT,             -- NULL for product events
    data       TEXT    NOT NULL  -- the JSON:API resource object
) STRICT;

CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_license_id ON events (license_id, seq) WHERE license_id IS NOT NULL;
CREATE INDEX events_product_id ON events (product_id, seq);
CREATE INDEX events_user_id ON events (user_id, seq) WHERE user_id IS NOT NULL;
CREATE INDEX events_time ON events (time);

CREATE TABLE event_head (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    seq            INTEGER NOT NULL, -- the last position handed out
    pruned_through INTEGER NOT NULL  -- every event up to here was pruned
) STRICT;

INSERT INTO event_head (id, seq, pruned_through) VALUES (1, 0, 0);

CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    url         TEXT    NOT NULL,
    event_types TEXT    NOT NULL DEFAULT '', -- comma-separated; '' = every type
    description TEXT    NOT NULL DEFAULT '',
    secret      TEXT    NOT NULL,
    cursor      INTEGER NOT NULL,            -- the last event seq queued for it
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq       INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    ordering_key    TEXT    NOT NULL, -- 'license:<id>' or 'product:<id>': delivered in seq order
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL DEFAULT 0, -- a claimed attempt's lease
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER
) STRICT;

CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, ordering_key, event_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);
CREATE INDEX webhook_deliveries_created_at ON webhook_deliveries (created_at) WHERE state <> 'pending';

-- Exact-time expiry looks for the earliest stop_date of live ACTIVE licenses.
CREATE INDEX licenses_active_stop_date ON licenses (stop_date)
    WHERE status = 'ACTIVE' AND deleted_at IS NULL AND stop_date IS NOT NULL;

-- Retention prunes tombstones by their deletion time.
CREATE INDEX licenses_deleted_at ON licenses (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX products_deleted_at ON products (deleted_at) WHERE deleted_at IS NOT NULL;
