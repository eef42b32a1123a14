//! The points budget's tables (`points_pools`, `points_usage`) and the
//! process heartbeats (`process_heartbeats`), docs/design.md §17.
//!
//! Every statement that hands out points is a single `UPDATE … RETURNING`,
//! atomic on both backends: two processes leasing at once cannot both get
//! the last points.

use sqlx::{AnyPool, FromRow};

/// A pool as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PoolRow {
    pub window_end: i64,
    pub confirmed: i64,
    pub quota: i64,
    pub leased: i64,
    pub last_grant: i64,
    pub paused_until: Option<i64>,
}

const RETURNING: &str = "RETURNING window_end, confirmed, quota, leased, last_grant, paused_until";

/// The pool's row, created (with `window_end` and `quota`) when missing.
pub async fn ensure(
    pool: &AnyPool,
    name: &str,
    window_end: i64,
    quota: i64,
    now: i64,
) -> Result<PoolRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO points_pools (pool, window_end, quota, leased, last_grant, updated_at) \
         VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (pool) DO NOTHING",
    )
    .bind(name)
    .bind(window_end)
    .bind(quota)
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query_as(
        "SELECT window_end, confirmed, quota, leased, last_grant, paused_until FROM points_pools WHERE pool = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
}

/// What a process asks of the pool in one statement.
#[derive(Debug, Clone, Copy)]
pub struct LeaseAsk {
    /// The window the process believes in; another one means the pool rolled.
    pub window_end: i64,
    /// Unspent points of the process's previous lease, handed back.
    pub give_back: i64,
    /// The chunk wanted.
    pub want: i64,
    /// Less than this is no use (the call at hand costs that much).
    pub need: i64,
    /// The share of the quota this class may lease up to, in 1/10,000.
    pub cap_bp: i64,
    pub now: i64,
}

/// Return `give_back` and take up to `want` points (at least `need`, else
/// none) while `leased` stays within `quota × cap_bp / 10000` and the pool
/// is not paused. `None` when the pool's window is not `ask.window_end` (the
/// caller re-reads it).
pub async fn lease(
    pool: &AnyPool,
    name: &str,
    ask: LeaseAsk,
) -> Result<Option<PoolRow>, sqlx::Error> {
    // Every right-hand side reads the row as it was before the statement.
    let room = "(quota * $1 / 10000 - (leased - $2))";
    let grant = format!(
        "CASE WHEN paused_until IS NOT NULL AND paused_until > $3 THEN 0 \
         WHEN {room} >= $4 THEN $4 WHEN {room} >= $5 THEN {room} ELSE 0 END"
    );
    let sql = format!(
        "UPDATE points_pools SET last_grant = {grant}, leased = leased - $2 + {grant}, updated_at = $3 \
         WHERE pool = $6 AND window_end = $7 {RETURNING}"
    );
    sqlx::query_as(&sql)
        .bind(ask.cap_bp)
        .bind(ask.give_back)
        .bind(ask.now)
        .bind(ask.want)
        .bind(ask.need.max(1))
        .bind(name)
        .bind(ask.window_end)
        .fetch_optional(pool)
        .await
}

/// Hand unspent points back without taking more.
pub async fn give_back(
    pool: &AnyPool,
    name: &str,
    window_end: i64,
    points: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE points_pools SET leased = CASE WHEN leased > $1 THEN leased - $1 ELSE 0 END \
         WHERE pool = $2 AND window_end = $3",
    )
    .bind(points)
    .bind(name)
    .bind(window_end)
    .execute(pool)
    .await?;
    Ok(())
}

/// Start a new window ending at `window_end` (nothing leased, no pause) —
/// unless another process already did (its window is within `slack` seconds
/// of this one, or later). Answers the row in force either way.
pub async fn roll(
    pool: &AnyPool,
    name: &str,
    window_end: i64,
    quota: i64,
    slack: i64,
    now: i64,
) -> Result<PoolRow, sqlx::Error> {
    sqlx::query(
        "UPDATE points_pools SET window_end = $1, quota = $2, leased = 0, last_grant = 0, \
         paused_until = NULL, confirmed = 1, updated_at = $3 WHERE pool = $4 AND window_end < $5",
    )
    .bind(window_end)
    .bind(quota)
    .bind(now)
    .bind(name)
    .bind(window_end - slack)
    .execute(pool)
    .await?;
    ensure(pool, name, window_end, quota, now).await
}

/// The first answer's headers say when the window in force ends: move the
/// guessed end there, keeping what was leased (unless another process did).
pub async fn confirm(
    pool: &AnyPool,
    name: &str,
    window_end: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE points_pools SET window_end = $1, confirmed = 1, updated_at = $2 WHERE pool = $3 AND confirmed = 0",
    )
    .bind(window_end)
    .bind(now)
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Atlassian's headers put the reset of the window in force (`from`) at
/// `to`, sooner than the row says: end the window there, keeping what was
/// leased (unless another process already moved or rolled it). Answers the
/// row in force either way.
pub async fn shorten(
    pool: &AnyPool,
    name: &str,
    from: i64,
    to: i64,
    quota: i64,
    now: i64,
) -> Result<PoolRow, sqlx::Error> {
    sqlx::query(
        "UPDATE points_pools SET window_end = $1, updated_at = $2 WHERE pool = $3 AND window_end = $4",
    )
    .bind(to)
    .bind(now)
    .bind(name)
    .bind(from)
    .execute(pool)
    .await?;
    ensure(pool, name, to, quota, now).await
}

/// The quota learnt from Atlassian's `RateLimit-Policy`.
pub async fn set_quota(pool: &AnyPool, name: &str, quota: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE points_pools SET quota = $1 WHERE pool = $2 AND quota <> $1")
        .bind(quota)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// A quota 429: nobody leases before `until`, and the window ends then at
/// the latest (Atlassian resets the pool when the pause ends).
pub async fn pause(
    pool: &AnyPool,
    name: &str,
    until: i64,
    now: i64,
) -> Result<PoolRow, sqlx::Error> {
    let sql = format!(
        "UPDATE points_pools SET paused_until = $1, leased = quota, \
         window_end = CASE WHEN window_end > $1 THEN $1 ELSE window_end END, updated_at = $2 \
         WHERE pool = $3 {RETURNING}"
    );
    sqlx::query_as(&sql)
        .bind(until)
        .bind(now)
        .bind(name)
        .fetch_one(pool)
        .await
}

/// Add spent points to the usage of (site, hour, class).
pub async fn add_usage(
    pool: &AnyPool,
    site: &str,
    hour_start: i64,
    class: &str,
    points: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO points_usage (site, hour_start, class, points) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (site, hour_start, class) DO UPDATE SET points = points_usage.points + excluded.points",
    )
    .bind(site)
    .bind(hour_start)
    .bind(class)
    .bind(points)
    .execute(pool)
    .await?;
    Ok(())
}

/// One cell of the usage history.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UsageRow {
    pub site: String,
    pub hour_start: i64,
    pub class: String,
    pub points: i64,
}

/// Usage since `from` (an hour start), oldest first.
pub async fn usage_since(pool: &AnyPool, from: i64) -> Result<Vec<UsageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT site, hour_start, class, points FROM points_usage WHERE hour_start >= $1 \
         ORDER BY hour_start, site, class LIMIT 10000",
    )
    .bind(from)
    .fetch_all(pool)
    .await
}

/// Points this site spent in the hour starting at `hour_start`, all classes.
pub async fn site_usage(pool: &AnyPool, site: &str, hour_start: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_usage WHERE site = $1 AND hour_start = $2",
    )
    .bind(site)
    .bind(hour_start)
    .fetch_one(pool)
    .await
}

/// Record that `process_id` is alive; answers how many processes were seen
/// since `live_since` (this one included). Rows older than `forget_before` go.
pub async fn heartbeat(
    pool: &AnyPool,
    process_id: &str,
    now: i64,
    live_since: i64,
    forget_before: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO process_heartbeats (process_id, seen_at) VALUES ($1, $2) \
         ON CONFLICT (process_id) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(process_id)
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM process_heartbeats WHERE seen_at < $1")
        .bind(forget_before)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT COUNT(*) FROM process_heartbeats WHERE seen_at >= $1")
        .bind(live_since)
        .fetch_one(pool)
        .await
}

/// A process leaving says so, so the others take its share at once.
pub async fn forget_process(pool: &AnyPool, process_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM process_heartbeats WHERE process_id = $1")
        .bind(process_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The issue count a sync's pass expects (`sync_estimates`).
pub async fn set_expected(
    pool: &AnyPool,
    sync_id: &str,
    expected: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sync_estimates (sync_id, expected, measured_at) VALUES ($1, $2, $3) \
         ON CONFLICT (sync_id) DO UPDATE SET expected = excluded.expected, measured_at = excluded.measured_at",
    )
    .bind(sync_id)
    .bind(expected)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn expected(pool: &AnyPool, sync_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT expected FROM sync_estimates WHERE sync_id = $1")
        .bind(sync_id)
        .fetch_optional(pool)
        .await
}
