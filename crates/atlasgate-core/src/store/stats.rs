//! What the database costs: its size, and the plan of every query a hot
//! path or a background pass runs (`atlasgate-bench scale`, BENCHMARKS.md).
//!
//! [`watched`] lists those queries. Where a store function's statement is a
//! shared constant (the keep-alive pass, `touch_used`, retention's deletes)
//! the plan is that of the *exact* statement, its `$n` bound with sample
//! values of the types the store binds (`EXPLAIN` with bound parameters:
//! a text-vs-integer mismatch or a different plan for `?` than for a literal
//! shows here). The others repeat their store function's text with literal
//! arguments; when such a statement changes in `store/`, change it here too.

use super::{Backend, Bind, Store, StoreError};

/// One query whose plan is watched: where it runs, and its text.
#[derive(Debug, Clone)]
pub struct WatchedQuery {
    pub name: &'static str,
    /// `hot` (per request) or `pass` (per background pass).
    pub kind: &'static str,
    pub sql: String,
    /// Bound to `$1`, `$2`, … in order (empty: the text has literals).
    pub args: Vec<Bind>,
}

fn literal(name: &'static str, kind: &'static str, sql: &str) -> WatchedQuery {
    WatchedQuery {
        name,
        kind,
        sql: sql.to_string(),
        args: Vec::new(),
    }
}

fn bound(name: &'static str, kind: &'static str, sql: &str, args: Vec<Bind>) -> WatchedQuery {
    WatchedQuery {
        name,
        kind,
        sql: sql.to_string(),
        args,
    }
}

/// The statements of the request hot paths and the background passes.
pub fn watched() -> Vec<WatchedQuery> {
    use crate::store::{connections as c, retention, sessions};
    // A plausible "now" and the cutoffs the passes derive from it.
    const NOW: i64 = 1_800_000_000;
    let mut out = vec![
        literal(
            "apps::by_key_hash (every app request, cached for a while)",
            "hot",
            "SELECT id FROM apps WHERE api_key_hash = 'x'",
        ),
        literal(
            "connections::get_for_app (/token, proxy: AppConnection)",
            "hot",
            "SELECT id FROM connections WHERE id = 'con_x' AND app_id = 'app_x'",
        ),
        {
            let q = c::touch_used_statement(&["con_x".into(), "con_y".into()], NOW);
            bound(
                "connections::touch_used (last_used_at, batched every 5 s off the request path)",
                "pass",
                &q.sql,
                q.binds,
            )
        },
        literal(
            "connections::get_locked (refresh claim)",
            "hot",
            "SELECT id FROM connections WHERE id = 'con_x'",
        ),
        literal(
            "connections::store_refreshed (refresh result)",
            "hot",
            "UPDATE connections SET token_version = token_version + 1, refresh_started_at = NULL \
             WHERE id = 'con_x' AND refresh_started_at = 1 AND status = 'active'",
        ),
        literal(
            "connections::find_by_owner / find_imported (import, connect callback)",
            "hot",
            "SELECT id, imported_token_sha256 FROM connections \
             WHERE app_id = 'app_x' AND owner = 'team:1' AND profile = 'jira'",
        ),
        literal(
            "connections::list_for_app (GET /v1/connections, one page)",
            "hot",
            "SELECT id FROM connections WHERE app_id = 'app_x' AND id > 'con_x' ORDER BY id LIMIT 51",
        ),
        bound(
            "connections::keepalive_candidates (keep-alive pass)",
            "pass",
            c::KEEPALIVE_CANDIDATES,
            vec![Bind::Int(NOW - 83 * 86_400), Bind::Int(200)],
        ),
        bound(
            "connections::stale_refresh_marks (keep-alive pass)",
            "pass",
            c::STALE_REFRESH_MARKS,
            vec![Bind::Int(NOW), Bind::Int(200)],
        ),
        bound(
            "sessions::forget_expired, states (keep-alive pass)",
            "pass",
            sessions::FORGET_EXPIRED[0],
            vec![Bind::Int(NOW - 86_400)],
        ),
        bound(
            "sessions::forget_expired, sessions (keep-alive pass)",
            "pass",
            sessions::FORGET_EXPIRED[1],
            vec![Bind::Int(NOW - 86_400)],
        ),
        literal(
            "events::claim_due (outbox worker, every second)",
            "pass",
            "SELECT seq FROM events e WHERE e.delivery_state = 'pending' AND e.next_attempt_at <= 1 \
             AND (e.locked_until IS NULL OR e.locked_until < 1) \
             AND NOT EXISTS (SELECT 1 FROM events p WHERE p.delivery_state = 'pending' AND p.seq < e.seq \
                 AND ((e.connection_id IS NOT NULL AND p.connection_id = e.connection_id) \
                   OR (e.connection_id IS NULL AND p.connection_id IS NULL AND p.app_id = e.app_id))) \
             ORDER BY e.seq LIMIT 50",
        ),
        literal(
            "syncs::claim_due (sync worker, every second; webhook renewal runs in the pass)",
            "pass",
            "SELECT id FROM syncs WHERE state <> 'stopped' AND next_run_at <= 1 \
             AND (locked_until IS NULL OR locked_until < 1) ORDER BY next_run_at, id LIMIT 10",
        ),
        literal(
            "deliveries::due (Jira webhook inbox, every second)",
            "pass",
            "SELECT identifier FROM jira_webhook_deliveries WHERE state = 'received' \
             AND (locked_until IS NULL OR locked_until < 1) AND received_at < 1 ORDER BY received_at LIMIT 20",
        ),
        literal(
            "connections::dashboard_lines (admin dashboard)",
            "hot",
            "SELECT c.id FROM connections c JOIN apps a ON a.id = c.app_id \
             ORDER BY c.updated_at DESC LIMIT 200",
        ),
    ];
    for t in retention::ALL {
        out.push(WatchedQuery {
            name: match t.table {
                "events" => "retention::delete_batch, events (retention pass)",
                "jira_webhook_deliveries" => {
                    "retention::delete_batch, jira_webhook_deliveries (retention pass)"
                }
                "connect_sessions" => "retention::delete_batch, connect_sessions (retention pass)",
                _ => "retention::delete_batch, audit (retention pass)",
            },
            kind: "pass",
            sql: retention::delete_sql(t),
            args: vec![
                Bind::Int(NOW - 30 * 86_400),
                Bind::Int(NOW),
                Bind::Int(retention::BATCH),
            ],
        });
    }
    out
}

/// The plan of `q` as the backend prints it: `EXPLAIN QUERY PLAN` lines
/// on SQLite, `EXPLAIN` lines on PostgreSQL, with `q.args` bound.
pub async fn explain(store: &Store, q: &WatchedQuery) -> Result<Vec<String>, StoreError> {
    let sql = match store.backend() {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {}", q.sql),
        Backend::Postgres => format!("EXPLAIN {}", q.sql),
    };
    let rows = super::bind_all(sqlx::query(&sql), &q.args)
        .fetch_all(store.pool())
        .await?;
    use sqlx::Row;
    match store.backend() {
        Backend::Sqlite => rows
            .iter()
            .map(|r| r.try_get::<String, _>(3))
            .collect::<Result<_, _>>()
            .map_err(Into::into),
        Backend::Postgres => rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(Into::into),
    }
}

/// Refresh the planner's statistics (after a bulk load, as an operator would).
pub async fn analyze(store: &Store) -> Result<(), StoreError> {
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    Ok(())
}

/// Bytes the database takes: pages in use on SQLite (the WAL not
/// included), `pg_database_size` on PostgreSQL.
pub async fn database_size(store: &Store) -> Result<i64, StoreError> {
    match store.backend() {
        Backend::Sqlite => {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(store.pool())
                .await?;
            let size: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(store.pool())
                .await?;
            Ok(pages * size)
        }
        Backend::Postgres => Ok(sqlx::query_scalar(
            "SELECT pg_database_size(current_database())::BIGINT",
        )
        .fetch_one(store.pool())
        .await?),
    }
}

/// A database name made only of `[a-z0-9_]` (it is spliced into DDL).
fn plain_name(name: &str) -> Result<(), StoreError> {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("database name {name:?}")))
    }
}

/// A new, empty PostgreSQL database `name` next to `admin_url`'s; returns
/// its URL (benchmarks run each configuration on a database of its own).
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    plain_name(name)?;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(admin_url).map_err(|_| StoreError::UnsupportedUrl)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drop a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    plain_name(name)?;
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Close database `name` to new connections and terminate every backend on
/// it (`open = false`), or open it again: the database goes away for its
/// clients without restarting a server other sessions share (the fault
/// campaign and the outage test).
pub async fn set_postgres_database_open(
    admin_url: &str,
    name: &str,
    open: bool,
) -> Result<(), StoreError> {
    use sqlx::Connection;
    plain_name(name)?;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {open}"))
        .execute(&mut conn)
        .await?;
    if !open {
        sqlx::query(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    Ok(())
}
