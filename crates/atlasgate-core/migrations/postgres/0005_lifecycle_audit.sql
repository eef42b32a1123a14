-- App lifecycle, the audit trail and retention (docs/design.md §13–15).

-- Every key of an app (`agk_…`), stored only as its SHA-256 hex. An app may
-- hold several; revoking one deletes its row. The key `apps.api_key_hash`
-- held until now becomes the first row here; that column is kept (SQLite
-- cannot drop a UNIQUE column without rebuilding `apps` and every table
-- under it) and is no longer read for authentication.
CREATE TABLE app_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key_hash      TEXT NOT NULL UNIQUE,
    -- The first characters of the key (`agk_1a2b3c4d`), to tell keys apart;
    -- `agk_` alone for the key migrated from `apps`, whose text was never stored.
    prefix        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Written at most once a minute per key and process.
    last_used_at  BIGINT
);
CREATE INDEX app_keys_app ON app_keys (app_id, created_at);
INSERT INTO app_keys (id, app_id, key_hash, prefix, created_at)
    SELECT 'key_' || id, id, api_key_hash, 'agk_', created_at FROM apps;

-- The previous webhook secret after a rotation (AAD: apps /
-- webhook_secret_old_ct / id): deliveries carry its signature too until
-- `webhook_secret_old_until`.
ALTER TABLE apps ADD COLUMN webhook_secret_old_ct BYTEA;
ALTER TABLE apps ADD COLUMN webhook_secret_old_until BIGINT;

-- Append-only audit records (no UPDATE ever runs on this table; rows leave
-- only by retention or owner erase). No foreign keys: a record outlives
-- the app or connection it names.
CREATE TABLE audit (
    seq            BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    app_id         TEXT,
    connection_id  TEXT,
    key_id         TEXT,
    client_ip      TEXT,
    -- JSON object; never a secret.
    detail         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_app ON audit (app_id, seq);
CREATE INDEX audit_connection ON audit (connection_id, seq);

-- Retention scans finished events by age.
CREATE INDEX events_retention ON events (delivery_state, created_at);
CREATE INDEX connect_sessions_created ON connect_sessions (created_at);
