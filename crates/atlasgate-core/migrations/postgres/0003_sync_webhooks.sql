-- Syncs (DESIGN §6), their checkpoints, the synced issues and projects, and
-- the Jira webhook deliveries received (dedupe + durable inbox).
-- Timestamps are unix seconds except `*_ms` columns (Jira's millisecond
-- `updated`); flags are 0/1 integers.

CREATE TABLE syncs (
    id                   TEXT PRIMARY KEY NOT NULL,
    app_id               TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    connection_id        TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    cloud_id             TEXT NOT NULL,
    site_url             TEXT NOT NULL,
    jql                  TEXT NOT NULL,
    webhooks             BIGINT NOT NULL DEFAULT 0,
    interval_s           BIGINT NOT NULL,
    -- pending | running | idle | failed | stopped
    state                TEXT NOT NULL,
    -- 1 once a full pass finished; later passes are incremental.
    full_done            BIGINT NOT NULL DEFAULT 0,
    -- High-water mark of the last finished pass: max Jira `updated` (ms) and key.
    cursor_updated_ms    BIGINT,
    cursor_key           TEXT,
    -- The pass in progress (its partitions hold the checkpoints).
    pass_kind            TEXT,
    pass_started_at      BIGINT,
    pass_max_updated_ms  BIGINT,
    run_requested        BIGINT NOT NULL DEFAULT 0,
    next_run_at          BIGINT NOT NULL,
    last_run_at          BIGINT,
    last_error           TEXT,
    failures             BIGINT NOT NULL DEFAULT 0,
    -- Passes finished so far.
    passes               BIGINT NOT NULL DEFAULT 0,
    locked_by            TEXT,
    locked_until         BIGINT,
    time_zone            TEXT,
    story_points_field   TEXT,
    sprint_field         TEXT,
    webhook_id           BIGINT,
    webhook_filter       TEXT,
    -- 1 when the registered filter is broader than the JQL (check each delivery).
    webhook_local_filter BIGINT NOT NULL DEFAULT 0,
    webhook_expires_at   BIGINT,
    webhook_error        TEXT,
    last_reconciled_at   BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX syncs_due ON syncs (state, next_run_at);
CREATE INDEX syncs_connection ON syncs (connection_id);

-- Checkpoints of the pass in progress: one row per stream ('*' = the whole
-- JQL; a project id = that project's share of a full pass).
CREATE TABLE sync_partitions (
    sync_id              TEXT NOT NULL REFERENCES syncs(id) ON DELETE CASCADE,
    part                 TEXT NOT NULL,
    jql                  TEXT NOT NULL,
    -- Lower bound of the pass (ms), before the checkpoint moves.
    from_ms              BIGINT,
    cursor_updated_ms    BIGINT,
    cursor_key           TEXT,
    stored               BIGINT NOT NULL DEFAULT 0,
    done                 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sync_id, part)
);

CREATE TABLE synced_issues (
    connection_id        TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    issue_id             TEXT NOT NULL,
    issue_key            TEXT NOT NULL,
    project_id           TEXT,
    project_key          TEXT,
    summary              TEXT,
    status               TEXT,
    issue_type           TEXT,
    -- Text, not a float column: exact, and the same on both backends.
    story_points         TEXT,
    sprint_id            BIGINT,
    sprint_name          TEXT,
    sprint_state         TEXT,
    updated_ms           BIGINT NOT NULL,
    url                  TEXT NOT NULL,
    deleted              BIGINT NOT NULL DEFAULT 0,
    sync_id              TEXT,
    synced_at            BIGINT NOT NULL,
    PRIMARY KEY (connection_id, issue_id)
);
CREATE INDEX synced_issues_order ON synced_issues (connection_id, updated_ms, issue_id);
CREATE INDEX synced_issues_sync ON synced_issues (sync_id);

CREATE TABLE synced_projects (
    connection_id        TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    project_id           TEXT NOT NULL,
    project_key          TEXT NOT NULL,
    name                 TEXT NOT NULL,
    synced_at            BIGINT NOT NULL,
    PRIMARY KEY (connection_id, project_id)
);

-- Jira webhook deliveries, keyed by X-Atlassian-Webhook-Identifier (dedupe).
CREATE TABLE jira_webhook_deliveries (
    identifier           TEXT PRIMARY KEY NOT NULL,
    received_at          BIGINT NOT NULL,
    retry                BIGINT NOT NULL DEFAULT 0,
    event                TEXT NOT NULL,
    payload              TEXT NOT NULL,
    -- received | applied | ignored
    state                TEXT NOT NULL DEFAULT 'received',
    attempts             BIGINT NOT NULL DEFAULT 0,
    locked_until         BIGINT,
    applied_at           BIGINT,
    last_error           TEXT
);
CREATE INDEX jira_webhook_deliveries_state ON jira_webhook_deliveries (state, received_at);

-- When delivery of an event was first tried: the give-up age counts from
-- here, so an event held back behind an earlier one of its connection still
-- gets its full day of retries.
ALTER TABLE events ADD COLUMN first_attempt_at BIGINT;
