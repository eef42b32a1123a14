-- Importing existing grants (docs/importing.md) and the indexes the
-- background passes need at 100,000 connections (BENCHMARKS.md, "scale").

-- SHA-256 (hex) of the refresh token a connection was imported with; NULL
-- for a connection made by consent. A re-run of the same import answers
-- "unchanged" instead of presenting an already rotated token to Atlassian.
ALTER TABLE connections ADD COLUMN imported_token_sha256 TEXT;

-- The keep-alive pass's stale-mark query
-- (store/connections.rs::stale_refresh_marks): only rows with a mark.
CREATE INDEX connections_refresh_marks ON connections (refresh_lease_until)
    WHERE refresh_inflight_token IS NOT NULL;

-- The admin dashboard's "200 most recently changed" (dashboard_lines).
CREATE INDEX connections_updated ON connections (updated_at);

-- The keep-alive pass forgets expired connect sessions and states
-- (store/sessions.rs::forget_expired).
CREATE INDEX connect_states_expires ON connect_states (expires_at);
CREATE INDEX connect_sessions_expires ON connect_sessions (expires_at);
