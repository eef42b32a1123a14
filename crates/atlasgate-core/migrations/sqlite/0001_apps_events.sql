-- Apps (clients of atlasgate) and the event outbox.
-- Timestamps are unix seconds; ids are UUID strings; JSON is TEXT.

CREATE TABLE apps (
    id                 TEXT PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL UNIQUE,
    -- SHA-256 hex of the `agk_…` key; the key itself is never stored.
    api_key_hash       TEXT NOT NULL UNIQUE,
    webhook_url        TEXT,
    -- `whsec_…` encrypted by the vault (AAD: apps / webhook_secret_ct / id).
    webhook_secret_ct  BLOB,
    -- JSON array of allowed `return_to` origins.
    return_origins     TEXT NOT NULL DEFAULT '[]',
    created_at         BIGINT NOT NULL
);

CREATE TABLE events (
    -- Delivery order within a connection (and globally).
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    app_id             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    connection_id      TEXT,
    type               TEXT NOT NULL,
    payload            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    -- pending | delivered | failed (gave up) | skipped (app has no webhook_url)
    delivery_state     TEXT NOT NULL DEFAULT 'pending',
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT NOT NULL,
    last_attempt_at    BIGINT,
    last_status        INTEGER,
    last_error         TEXT,
    delivered_at       BIGINT,
    -- Lease taken by the worker delivering it (works on both backends).
    locked_by          TEXT,
    locked_until       BIGINT
);

CREATE INDEX events_due ON events (delivery_state, next_attempt_at);
CREATE INDEX events_app ON events (app_id, seq);
CREATE INDEX events_connection ON events (connection_id, seq);
