//! What the database costs: its size, and the plan of every query a hot
//! path or a background pass runs (`atlasgate-bench scale`, BENCHMARKS.md).
//!
//! [`WATCHED`] repeats those queries' text with literal arguments (a plan
//! needs values; PostgreSQL cannot `EXPLAIN` a statement with unbound
//! `$n`). When a statement in `store/` changes, change it here too.

use super::{Backend, Store, StoreError};

/// One query whose plan is watched: where it runs, and its text.
#[derive(Debug, Clone, Copy)]
pub struct WatchedQuery {
    pub name: &'static str,
    /// `hot` (per request) or `pass` (per background pass).
    pub kind: &'static str,
    pub sql: &'static str,
}

/// The statements of the request hot paths and the background passes, as
/// in `store/` with sample values.
pub const WATCHED: &[WatchedQuery] = &[
    WatchedQuery {
        name: "apps::by_key_hash (every app request, cached for a while)",
        kind: "hot",
        sql: "SELECT id FROM apps WHERE api_key_hash = 'x'",
    },
    WatchedQuery {
        name: "connections::get_for_app (/token, proxy: AppConnection)",
        kind: "hot",
        sql: "SELECT id FROM connections WHERE id = 'con_x' AND app_id = 'app_x'",
    },
    WatchedQuery {
        name: "connections::touch_used (/token, proxy; once a minute per connection)",
        kind: "hot",
        sql: "UPDATE connections SET last_used_at = 1 WHERE id = 'con_x'",
    },
    WatchedQuery {
        name: "connections::get_locked (refresh claim)",
        kind: "hot",
        sql: "SELECT id FROM connections WHERE id = 'con_x'",
    },
    WatchedQuery {
        name: "connections::store_refreshed (refresh result)",
        kind: "hot",
        sql: "UPDATE connections SET token_version = token_version + 1, refresh_started_at = NULL \
              WHERE id = 'con_x' AND refresh_started_at = 1 AND status = 'active'",
    },
    WatchedQuery {
        name: "connections::find_by_owner / find_imported (import, connect callback)",
        kind: "hot",
        sql: "SELECT id, imported_token_sha256 FROM connections \
              WHERE app_id = 'app_x' AND owner = 'team:1' AND profile = 'jira'",
    },
    WatchedQuery {
        name: "connections::list_for_app (GET /v1/connections, one page)",
        kind: "hot",
        sql: "SELECT id FROM connections WHERE app_id = 'app_x' AND id > 'con_x' ORDER BY id LIMIT 51",
    },
    WatchedQuery {
        name: "connections::keepalive_candidates (keep-alive pass)",
        kind: "pass",
        sql: "SELECT id FROM connections WHERE status = 'active' AND refresh_token IS NOT NULL \
              AND refresh_issued_at < 1 ORDER BY refresh_issued_at LIMIT 200",
    },
    WatchedQuery {
        name: "connections::stale_refresh_marks (keep-alive pass)",
        kind: "pass",
        sql: "SELECT id FROM connections WHERE status = 'active' AND refresh_inflight_token IS NOT NULL \
              AND (refresh_lease_until IS NULL OR refresh_lease_until < 1) LIMIT 200",
    },
    WatchedQuery {
        name: "sessions::forget_expired, states (keep-alive pass)",
        kind: "pass",
        sql: "DELETE FROM connect_states WHERE expires_at < 1",
    },
    WatchedQuery {
        name: "sessions::forget_expired, sessions (keep-alive pass)",
        kind: "pass",
        sql: "DELETE FROM connect_sessions WHERE expires_at < 1",
    },
    WatchedQuery {
        name: "events::claim_due (outbox worker, every second)",
        kind: "pass",
        sql: "SELECT seq FROM events e WHERE e.delivery_state = 'pending' AND e.next_attempt_at <= 1 \
              AND (e.locked_until IS NULL OR e.locked_until < 1) \
              AND NOT EXISTS (SELECT 1 FROM events p WHERE p.delivery_state = 'pending' AND p.seq < e.seq \
                  AND ((e.connection_id IS NOT NULL AND p.connection_id = e.connection_id) \
                    OR (e.connection_id IS NULL AND p.connection_id IS NULL AND p.app_id = e.app_id))) \
              ORDER BY e.seq LIMIT 50",
    },
    WatchedQuery {
        name: "syncs::claim_due (sync worker, every second; webhook renewal runs in the pass)",
        kind: "pass",
        sql: "SELECT id FROM syncs WHERE state <> 'stopped' AND next_run_at <= 1 \
              AND (locked_until IS NULL OR locked_until < 1) ORDER BY next_run_at, id LIMIT 10",
    },
    WatchedQuery {
        name: "deliveries::due (Jira webhook inbox, every second)",
        kind: "pass",
        sql: "SELECT identifier FROM jira_webhook_deliveries WHERE state = 'received' \
              AND (locked_until IS NULL OR locked_until < 1) AND received_at < 1 ORDER BY received_at LIMIT 20",
    },
    WatchedQuery {
        name: "connections::dashboard_lines (admin dashboard)",
        kind: "hot",
        sql: "SELECT c.id FROM connections c JOIN apps a ON a.id = c.app_id \
              ORDER BY c.updated_at DESC LIMIT 200",
    },
];

/// The plan of `sql` as the backend prints it: `EXPLAIN QUERY PLAN` lines
/// on SQLite, `EXPLAIN` lines on PostgreSQL.
pub async fn explain(store: &Store, sql: &str) -> Result<Vec<String>, StoreError> {
    match store.backend() {
        Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(store.pool())
                    .await?;
            Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
        }
        Backend::Postgres => {
            let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
                .fetch_all(store.pool())
                .await?;
            Ok(rows)
        }
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

/// A new, empty PostgreSQL database `name` next to `admin_url`'s; returns
/// its URL (benchmarks run each configuration on a database of its own).
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Corrupt(format!("database name {name:?}")));
    }
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
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Corrupt(format!("database name {name:?}")));
    }
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
