-- The MCP server of each connection (docs/design.md §16).
-- Timestamps are unix seconds; flags are 0/1 integers.

-- A connection's tool policy (`PUT /v1/connections/{id}/mcp-policy`). No row
-- means the default: every tool, writes allowed.
CREATE TABLE mcp_policies (
    connection_id        TEXT PRIMARY KEY NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    read_only            INTEGER NOT NULL DEFAULT 0,
    -- JSON array of the tool names allowed; NULL = every tool.
    tools                TEXT,
    updated_at           BIGINT NOT NULL
);

-- `jira_create_issue` calls seen in the last 10 minutes, so that the same
-- call again returns the first issue instead of creating a second one.
-- `request_hash` is the SHA-256 (hex) of the call's idempotency key, or of
-- its canonical arguments when it has none. A row without `issue_key` is a
-- creation in flight (claimed at `created_at`).
CREATE TABLE mcp_created_issues (
    connection_id        TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    request_hash         TEXT NOT NULL,
    issue_id             TEXT,
    issue_key            TEXT,
    url                  TEXT,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (connection_id, request_hash)
);
CREATE INDEX mcp_created_issues_age ON mcp_created_issues (created_at);
