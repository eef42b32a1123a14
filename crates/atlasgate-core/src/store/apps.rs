//! Rows of the `apps` table.

use sqlx::AnyPool;

use super::StoreError;

/// One app as stored. The API key exists only as its SHA-256 hex.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub api_key_hash: String,
    pub webhook_url: Option<String>,
    pub webhook_secret_ct: Option<Vec<u8>>,
    /// The return origins (a JSON array in the column).
    #[sqlx(try_from = "super::JsonText")]
    pub return_origins: Vec<String>,
    pub created_at: i64,
    /// The secret before the last rotation, still signing until `webhook_secret_old_until`.
    pub webhook_secret_old_ct: Option<Vec<u8>>,
    pub webhook_secret_old_until: Option<i64>,
}

const COLUMNS: &str =
    "id, name, api_key_hash, webhook_url, webhook_secret_ct, return_origins, created_at, \
     webhook_secret_old_ct, webhook_secret_old_until";

/// [`COLUMNS`] of `apps a` in a join.
pub(super) const COLUMNS_OF_A: &str =
    "a.id, a.name, a.api_key_hash, a.webhook_url, a.webhook_secret_ct, \
     a.return_origins, a.created_at, a.webhook_secret_old_ct, a.webhook_secret_old_until";

/// Insert an app and its first key (`key_id`, `key_prefix`; the hash is
/// `row.api_key_hash`) in one transaction.
pub async fn insert(
    pool: &AnyPool,
    row: &AppRow,
    key_id: &str,
    key_prefix: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO apps ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.api_key_hash)
    .bind(row.webhook_url.clone())
    .bind(row.webhook_secret_ct.clone())
    .bind(super::AsJson(&row.return_origins))
    .bind(row.created_at)
    .bind(row.webhook_secret_old_ct.clone())
    .bind(row.webhook_secret_old_until)
    .execute(&mut *tx)
    .await?;
    super::app_keys::insert(
        &mut *tx,
        key_id,
        &row.id,
        &row.api_key_hash,
        key_prefix,
        row.created_at,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(pool: &AnyPool) -> Result<Vec<AppRow>, StoreError> {
    Ok(sqlx::query_as::<_, AppRow>(&format!(
        "SELECT {COLUMNS} FROM apps ORDER BY created_at, name"
    ))
    .fetch_all(pool)
    .await?)
}

pub async fn by_id(pool: &AnyPool, id: &str) -> Result<Option<AppRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, AppRow>(&format!("SELECT {COLUMNS} FROM apps WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn by_name(pool: &AnyPool, name: &str) -> Result<Option<AppRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, AppRow>(&format!("SELECT {COLUMNS} FROM apps WHERE name = $1"))
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

/// The changeable fields of an app: name, webhook URL (and secret), origins.
/// Returns whether the app exists.
pub async fn update(pool: &AnyPool, row: &AppRow) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE apps SET name = $2, webhook_url = $3, webhook_secret_ct = $4, return_origins = $5, \
         webhook_secret_old_ct = $6, webhook_secret_old_until = $7 WHERE id = $1",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(row.webhook_url.clone())
    .bind(row.webhook_secret_ct.clone())
    .bind(super::AsJson(&row.return_origins))
    .bind(row.webhook_secret_old_ct.clone())
    .bind(row.webhook_secret_old_until)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delete an app; its keys, connections, sessions, syncs, synced issues and
/// events go with it (`ON DELETE CASCADE`). Returns whether it existed.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM apps WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
