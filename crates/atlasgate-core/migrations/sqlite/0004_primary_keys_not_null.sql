-- SQLite let the text primary keys of 0002 hold NULL: unless a column is an
-- INTEGER PRIMARY KEY (or declared NOT NULL), SQLite accepts NULL in a
-- PRIMARY KEY column, where PostgreSQL's PRIMARY KEY implies NOT NULL. The
-- migration-parity test (tests/api/schema_parity.rs) found it on
-- connect_sessions.id, connect_states.state_hash and connections.id.
--
-- SQLite cannot add NOT NULL to a column, so those tables are rebuilt. The
-- migration runs in a transaction with foreign keys on (PRAGMA foreign_keys
-- cannot change inside one), and dropping a parent table would then run its
-- ON DELETE CASCADE into the children. So every table under a rebuilt one is
-- rebuilt with it (syncs, sync_partitions, synced_issues, synced_projects):
-- new copies reference each other, the old tables are dropped children first
-- (nothing is left to cascade into), and the copies take the old names, which
-- makes SQLite rewrite the REFERENCES clauses. Columns, defaults, keys and
-- indexes are exactly those of 0002 and 0003 (their comments say what each
-- column means); only the three NOT NULLs are new. A table added later that
-- references one of these must join the rebuild in any migration like this.

-- 1. New tables, each referencing the new copy of its parent.
CREATE TABLE connect_sessions_new (
    id              TEXT PRIMARY KEY NOT NULL,
    app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    owner           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    return_to       TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',
    browser_hash    TEXT,
    connection_id   TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    completed_at    BIGINT
);

CREATE TABLE connect_states_new (
    state_hash      TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT NOT NULL REFERENCES connect_sessions_new(id) ON DELETE CASCADE,
    browser_hash    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE TABLE connections_new (
    id                      TEXT PRIMARY KEY NOT NULL,
    app_id                  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    owner                   TEXT NOT NULL,
    profile                 TEXT NOT NULL,
    status                  TEXT NOT NULL,
    account_id              TEXT,
    account_email           TEXT,
    account_name            TEXT,
    scopes                  TEXT NOT NULL DEFAULT '[]',
    sites                   TEXT NOT NULL DEFAULT '[]',
    site_cloud_id           TEXT,
    site_url                TEXT,
    access_token            BLOB,
    refresh_token           BLOB,
    access_expires_at       BIGINT,
    refresh_issued_at       BIGINT,
    token_version           BIGINT NOT NULL DEFAULT 0,
    refresh_inflight_token  BLOB,
    refresh_started_at      BIGINT,
    refresh_lease_until     BIGINT,
    refresh_attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at         BIGINT,
    last_refresh_error      TEXT,
    connected_at            BIGINT NOT NULL,
    last_refreshed_at       BIGINT,
    last_used_at            BIGINT,
    disconnected_at         BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (app_id, owner, profile)
);

CREATE TABLE syncs_new (
    id                   TEXT PRIMARY KEY NOT NULL,
    app_id               TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    connection_id        TEXT NOT NULL REFERENCES connections_new(id) ON DELETE CASCADE,
    cloud_id             TEXT NOT NULL,
    site_url             TEXT NOT NULL,
    jql                  TEXT NOT NULL,
    webhooks             INTEGER NOT NULL DEFAULT 0,
    interval_s           BIGINT NOT NULL,
    state                TEXT NOT NULL,
    full_done            INTEGER NOT NULL DEFAULT 0,
    cursor_updated_ms    BIGINT,
    cursor_key           TEXT,
    pass_kind            TEXT,
    pass_started_at      BIGINT,
    pass_max_updated_ms  BIGINT,
    run_requested        INTEGER NOT NULL DEFAULT 0,
    next_run_at          BIGINT NOT NULL,
    last_run_at          BIGINT,
    last_error           TEXT,
    failures             BIGINT NOT NULL DEFAULT 0,
    passes               BIGINT NOT NULL DEFAULT 0,
    locked_by            TEXT,
    locked_until         BIGINT,
    time_zone            TEXT,
    story_points_field   TEXT,
    sprint_field         TEXT,
    webhook_id           BIGINT,
    webhook_filter       TEXT,
    webhook_local_filter INTEGER NOT NULL DEFAULT 0,
    webhook_expires_at   BIGINT,
    webhook_error        TEXT,
    last_reconciled_at   BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE sync_partitions_new (
    sync_id              TEXT NOT NULL REFERENCES syncs_new(id) ON DELETE CASCADE,
    part                 TEXT NOT NULL,
    jql                  TEXT NOT NULL,
    from_ms              BIGINT,
    cursor_updated_ms    BIGINT,
    cursor_key           TEXT,
    stored               BIGINT NOT NULL DEFAULT 0,
    done                 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sync_id, part)
);

CREATE TABLE synced_issues_new (
    connection_id        TEXT NOT NULL REFERENCES connections_new(id) ON DELETE CASCADE,
    issue_id             TEXT NOT NULL,
    issue_key            TEXT NOT NULL,
    project_id           TEXT,
    project_key          TEXT,
    summary              TEXT,
    status               TEXT,
    issue_type           TEXT,
    story_points         TEXT,
    sprint_id            BIGINT,
    sprint_name          TEXT,
    sprint_state         TEXT,
    updated_ms           BIGINT NOT NULL,
    url                  TEXT NOT NULL,
    deleted              INTEGER NOT NULL DEFAULT 0,
    sync_id              TEXT,
    synced_at            BIGINT NOT NULL,
    PRIMARY KEY (connection_id, issue_id)
);

CREATE TABLE synced_projects_new (
    connection_id        TEXT NOT NULL REFERENCES connections_new(id) ON DELETE CASCADE,
    project_id           TEXT NOT NULL,
    project_key          TEXT NOT NULL,
    name                 TEXT NOT NULL,
    synced_at            BIGINT NOT NULL,
    PRIMARY KEY (connection_id, project_id)
);

-- 2. Copy every row, parents first (foreign keys are checked).
INSERT INTO connect_sessions_new (id, app_id, owner, profile, scopes, return_to, status, browser_hash, connection_id, created_at, expires_at, completed_at)
    SELECT id, app_id, owner, profile, scopes, return_to, status, browser_hash, connection_id, created_at, expires_at, completed_at FROM connect_sessions;
INSERT INTO connect_states_new (state_hash, session_id, browser_hash, created_at, expires_at, used_at)
    SELECT state_hash, session_id, browser_hash, created_at, expires_at, used_at FROM connect_states;
INSERT INTO connections_new (id, app_id, owner, profile, status, account_id, account_email, account_name, scopes, sites, site_cloud_id, site_url, access_token, refresh_token, access_expires_at, refresh_issued_at, token_version, refresh_inflight_token, refresh_started_at, refresh_lease_until, refresh_attempts, next_attempt_at, last_refresh_error, connected_at, last_refreshed_at, last_used_at, disconnected_at, created_at, updated_at)
    SELECT id, app_id, owner, profile, status, account_id, account_email, account_name, scopes, sites, site_cloud_id, site_url, access_token, refresh_token, access_expires_at, refresh_issued_at, token_version, refresh_inflight_token, refresh_started_at, refresh_lease_until, refresh_attempts, next_attempt_at, last_refresh_error, connected_at, last_refreshed_at, last_used_at, disconnected_at, created_at, updated_at FROM connections;
INSERT INTO syncs_new (id, app_id, connection_id, cloud_id, site_url, jql, webhooks, interval_s, state, full_done, cursor_updated_ms, cursor_key, pass_kind, pass_started_at, pass_max_updated_ms, run_requested, next_run_at, last_run_at, last_error, failures, passes, locked_by, locked_until, time_zone, story_points_field, sprint_field, webhook_id, webhook_filter, webhook_local_filter, webhook_expires_at, webhook_error, last_reconciled_at, created_at, updated_at)
    SELECT id, app_id, connection_id, cloud_id, site_url, jql, webhooks, interval_s, state, full_done, cursor_updated_ms, cursor_key, pass_kind, pass_started_at, pass_max_updated_ms, run_requested, next_run_at, last_run_at, last_error, failures, passes, locked_by, locked_until, time_zone, story_points_field, sprint_field, webhook_id, webhook_filter, webhook_local_filter, webhook_expires_at, webhook_error, last_reconciled_at, created_at, updated_at FROM syncs;
INSERT INTO sync_partitions_new (sync_id, part, jql, from_ms, cursor_updated_ms, cursor_key, stored, done)
    SELECT sync_id, part, jql, from_ms, cursor_updated_ms, cursor_key, stored, done FROM sync_partitions;
INSERT INTO synced_issues_new (connection_id, issue_id, issue_key, project_id, project_key, summary, status, issue_type, story_points, sprint_id, sprint_name, sprint_state, updated_ms, url, deleted, sync_id, synced_at)
    SELECT connection_id, issue_id, issue_key, project_id, project_key, summary, status, issue_type, story_points, sprint_id, sprint_name, sprint_state, updated_ms, url, deleted, sync_id, synced_at FROM synced_issues;
INSERT INTO synced_projects_new (connection_id, project_id, project_key, name, synced_at)
    SELECT connection_id, project_id, project_key, name, synced_at FROM synced_projects;

-- 3. Drop the old tables, children first, so no ON DELETE CASCADE fires.
DROP TABLE sync_partitions;
DROP TABLE syncs;
DROP TABLE synced_issues;
DROP TABLE synced_projects;
DROP TABLE connect_states;
DROP TABLE connections;
DROP TABLE connect_sessions;

-- 4. Take the old names; SQLite rewrites the children's REFERENCES with them.
ALTER TABLE connect_sessions_new RENAME TO connect_sessions;
ALTER TABLE connect_states_new RENAME TO connect_states;
ALTER TABLE connections_new RENAME TO connections;
ALTER TABLE syncs_new RENAME TO syncs;
ALTER TABLE sync_partitions_new RENAME TO sync_partitions;
ALTER TABLE synced_issues_new RENAME TO synced_issues;
ALTER TABLE synced_projects_new RENAME TO synced_projects;

-- 5. The indexes, as 0002 and 0003 created them.
CREATE INDEX connect_sessions_app ON connect_sessions (app_id);
CREATE INDEX connect_states_session ON connect_states (session_id);
CREATE INDEX connections_app_created ON connections (app_id, created_at, id);
CREATE INDEX connections_keepalive ON connections (status, refresh_issued_at);
CREATE INDEX syncs_due ON syncs (state, next_run_at);
CREATE INDEX syncs_connection ON syncs (connection_id);
CREATE INDEX synced_issues_order ON synced_issues (connection_id, updated_ms, issue_id);
CREATE INDEX synced_issues_sync ON synced_issues (sync_id);
