-- The hourly points budget (docs/design.md §17), shared by every process,
-- and the heartbeats that let processes split the burst rate between them.
-- Timestamps are unix seconds.

-- One row per quota pool: `app` (Atlassian's global pool of this OAuth app)
-- or a cloud id (a per-tenant pool). `leased` counts the points handed to
-- processes this window; a process spends only what it leased, so the sum of
-- all processes' spend never passes `quota`.
CREATE TABLE points_pools (
    pool          TEXT PRIMARY KEY NOT NULL,
    -- When Atlassian resets this pool (learnt from `RateLimit: …;t=`).
    window_end    BIGINT NOT NULL,
    -- 1 once an answer's headers confirmed `window_end` (else a guess: the
    -- top of the UTC hour).
    confirmed     BIGINT NOT NULL DEFAULT 0,
    quota         BIGINT NOT NULL,
    leased        BIGINT NOT NULL DEFAULT 0,
    -- What the last lease statement granted (read back with RETURNING).
    last_grant    BIGINT NOT NULL DEFAULT 0,
    -- A quota 429 closes the pool for every caller until then.
    paused_until  BIGINT,
    updated_at    BIGINT NOT NULL
);

-- Points spent, per site, UTC hour and class (`interactive` | `background`):
-- the dashboard's chart. Flushed by each process every few seconds.
CREATE TABLE points_usage (
    site        TEXT NOT NULL,
    hour_start  BIGINT NOT NULL,
    class       TEXT NOT NULL,
    points      BIGINT NOT NULL,
    PRIMARY KEY (site, hour_start, class)
);

-- Live atlasgate processes; each paces at rate / live processes.
CREATE TABLE process_heartbeats (
    process_id  TEXT PRIMARY KEY NOT NULL,
    seen_at     BIGINT NOT NULL
);
CREATE INDEX process_heartbeats_seen ON process_heartbeats (seen_at);

-- How many issues the pass in progress of a sync expects (Jira's
-- `search/approximate-count`, 1 point): the basis of `eta_s`.
CREATE TABLE sync_estimates (
    sync_id      TEXT PRIMARY KEY NOT NULL REFERENCES syncs(id) ON DELETE CASCADE,
    expected     BIGINT NOT NULL,
    measured_at  BIGINT NOT NULL
);
