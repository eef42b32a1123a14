-- The keep-alive pass's stale-mark query (store/connections.rs::stale_refresh_marks)
-- filters on `status = 'active'` as well. With the 0010 index on
-- (refresh_lease_until) alone, SQLite's planner preferred an equality search
-- on connections_keepalive (status=?), which visits every active row: 232 ms
-- per pass at 100,000 connections with nothing due (BENCHMARKS.md, "scale").
-- Leading with status makes the partial index, which holds only rows with a
-- refresh mark, the better equality search on both backends.
DROP INDEX connections_refresh_marks;
CREATE INDEX connections_refresh_marks ON connections (status, refresh_lease_until)
    WHERE refresh_inflight_token IS NOT NULL;
