//! The encrypted columns, read and rewritten by key rotation
//! (`vault/keys.rs`). Table and column names come from the vault's fixed
//! list of encrypted columns, never from input, so formatting them into the
//! statement is safe.

use sqlx::{Any, AnyPool, Transaction};

/// How many rows hold a value in `table.column`.
pub async fn count(pool: &AnyPool, table: &str, column: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL"
    ))
    .fetch_one(pool)
    .await
}

/// The next `limit` (id, ciphertext) pairs after id `after`, in id order.
pub async fn batch_after(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    id_column: &str,
    column: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {id_column}, {column} FROM {table} \
         WHERE {column} IS NOT NULL AND {id_column} > $1 ORDER BY {id_column} LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Replace `old` by `fresh` in one row; false when the row changed meanwhile.
#[allow(clippy::too_many_arguments)]
pub async fn replace(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    id_column: &str,
    column: &str,
    id: &str,
    old: &[u8],
    fresh: Vec<u8>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(&format!(
        "UPDATE {table} SET {column} = $1 WHERE {id_column} = $2 AND {column} = $3"
    ))
    .bind(fresh)
    .bind(id)
    .bind(old.to_vec())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every ciphertext stored in `table.column`.
pub async fn all(pool: &AnyPool, table: &str, column: &str) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
    ))
    .fetch_all(pool)
    .await
}
