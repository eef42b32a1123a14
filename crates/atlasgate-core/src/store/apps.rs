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
    /// JSON array of origins.
    pub return_origins: String,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, name, api_key_hash, webhook_url, webhook_secret_ct, return_origins, created_at";

pub async fn insert(pool: &AnyPool, row: &AppRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO apps ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.api_key_hash)
    .bind(row.webhook_url.clone())
    .bind(row.webhook_secret_ct.clone())
    .bind(&row.return_origins)
    .bind(row.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn list(pool: &AnyPool) -> Result<Vec<AppRow>, StoreError> {
    Ok(sqlx::query_as::<_, AppRow>(&format!(
        "SELECT {COLUMNS} FROM apps ORDER BY created_at, name"
    ))
    .fetch_all(pool)
    .await?)
}

pub async fn by_key_hash(pool: &AnyPool, hash: &str) -> Result<Option<AppRow>, StoreError> {
    Ok(sqlx::query_as::<_, AppRow>(&format!(
        "SELECT {COLUMNS} FROM apps WHERE api_key_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(pool)
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
