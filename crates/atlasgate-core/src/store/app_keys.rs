//! Rows of the `app_keys` table: every `agk_…` key of an app, as its
//! SHA-256 hex only (docs/design.md §13).

use sqlx::{Any, AnyPool, Executor};

use super::apps::AppRow;

/// One key as stored (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppKeyRow {
    pub id: String,
    pub app_id: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The app a key hash authenticates, with the key's id and last use.
#[derive(Debug, Clone)]
pub struct KeyedApp {
    pub app: AppRow,
    pub key_id: String,
    pub key_last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KeyedAppRow {
    #[sqlx(flatten)]
    app: AppRow,
    key_id: String,
    key_last_used_at: Option<i64>,
}

pub async fn insert<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    id: &str,
    app_id: &str,
    key_hash: &str,
    prefix: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_keys (id, app_id, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(app_id)
    .bind(key_hash)
    .bind(prefix)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn list(pool: &AnyPool, app_id: &str) -> Result<Vec<AppKeyRow>, sqlx::Error> {
    sqlx::query_as::<_, AppKeyRow>(
        "SELECT id, app_id, prefix, created_at, last_used_at FROM app_keys \
         WHERE app_id = $1 ORDER BY created_at, id",
    )
    .bind(app_id)
    .fetch_all(pool)
    .await
}

/// Delete one key of an app; its hash, when there was one (the caller
/// drops it from the key cache).
pub async fn delete(
    pool: &AnyPool,
    app_id: &str,
    key_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(
        "DELETE FROM app_keys WHERE app_id = $1 AND id = $2 RETURNING key_hash",
    )
    .bind(app_id)
    .bind(key_id)
    .fetch_optional(pool)
    .await
}

/// The app of a key hash, if the key exists.
pub async fn by_hash(pool: &AnyPool, hash: &str) -> Result<Option<KeyedApp>, sqlx::Error> {
    let row = sqlx::query_as::<_, KeyedAppRow>(&format!(
        "SELECT {}, k.id AS key_id, k.last_used_at AS key_last_used_at \
         FROM app_keys k JOIN apps a ON a.id = k.app_id WHERE k.key_hash = $1",
        super::apps::COLUMNS_OF_A
    ))
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| KeyedApp {
        app: r.app,
        key_id: r.key_id,
        key_last_used_at: r.key_last_used_at,
    }))
}

/// Record a key's use (the caller throttles to once a minute).
pub async fn touch(pool: &AnyPool, key_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_keys SET last_used_at = $2 WHERE id = $1")
        .bind(key_id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}
