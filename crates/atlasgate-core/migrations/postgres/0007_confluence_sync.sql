-- Confluence sync (docs/design.md §16): a sync with `confluence_cql` (and
-- an empty `jql`) mirrors the pages that CQL finds into `synced_pages`.
-- Timestamps are unix seconds except `updated_ms` (the version's time).

ALTER TABLE syncs ADD COLUMN confluence_cql TEXT;

CREATE TABLE synced_pages (
    connection_id        TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    page_id              TEXT NOT NULL,
    space_id             TEXT NOT NULL,
    space_key            TEXT,
    title                TEXT NOT NULL,
    version              BIGINT NOT NULL,
    -- When the current version was made (ms).
    updated_ms           BIGINT NOT NULL,
    url                  TEXT,
    body_markdown        TEXT NOT NULL,
    -- 1 once the page no longer matches the CQL (deleted, trashed or moved out).
    deleted              BIGINT NOT NULL DEFAULT 0,
    sync_id              TEXT,
    synced_at            BIGINT NOT NULL,
    PRIMARY KEY (connection_id, page_id)
);
CREATE INDEX synced_pages_order ON synced_pages (connection_id, updated_ms, page_id);
CREATE INDEX synced_pages_sync ON synced_pages (sync_id);
