-- The MCP server's reads from the store (docs/design.md §16, docs/agents.md
-- "Reads from the store"). Timestamps in unix milliseconds.

-- What `jira_get_issue` shows beyond the columns of a synced issue: Jira's
-- `description` (ADF), `assignee`, `reporter`, `resolution` and `created`
-- fields as Jira answered them, one JSON object. NULL for a copy stored
-- before this migration (such a copy is read from Jira until it is synced again).
ALTER TABLE synced_issues ADD COLUMN detail TEXT;

-- Set when the copy may be out of date (the connection's MCP server wrote
-- the issue or page: read your own writes; or the sync found the issue
-- outside its JQL), cleared when the sync stores the copy again. A copy
-- with a mark answers no store read: reads go to Atlassian.
ALTER TABLE synced_issues ADD COLUMN stale_since_ms BIGINT;
ALTER TABLE synced_pages ADD COLUMN stale_since_ms BIGINT;
