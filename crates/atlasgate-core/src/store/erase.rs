//! Owner erase (docs/design.md §13): the rows of an app's owner, deleted
//! for good. The caller has already disconnected each connection (its Jira
//! webhooks deleted while the tokens still worked).

use sqlx::AnyPool;

use super::connections::{ConnectionRow, COLUMNS};
use super::{Backend, Store, StoreError};
use crate::ids::{ConnectionId, Owner};

/// Every connection (all profiles) of `owner` in `app_id`.
pub async fn owner_connections(
    pool: &AnyPool,
    app_id: &str,
    owner: &Owner,
) -> Result<Vec<ConnectionRow>, sqlx::Error> {
    sqlx::query_as::<_, ConnectionRow>(&format!(
        "SELECT {COLUMNS} FROM connections WHERE app_id = $1 AND owner = $2 ORDER BY id"
    ))
    .bind(app_id)
    .bind(owner)
    .fetch_all(pool)
    .await
}

/// Every connection of an app (app delete disconnects each).
pub async fn app_connections(
    pool: &AnyPool,
    app_id: &str,
) -> Result<Vec<ConnectionRow>, sqlx::Error> {
    sqlx::query_as::<_, ConnectionRow>(&format!(
        "SELECT {COLUMNS} FROM connections WHERE app_id = $1 ORDER BY id"
    ))
    .bind(app_id)
    .fetch_all(pool)
    .await
}

/// Delete the connections (their syncs, partitions, synced issues and
/// projects go by `ON DELETE CASCADE`), their events and audit records, and
/// the owner's connect sessions, in one transaction. Returns how many
/// connections were deleted.
pub async fn erase_owner(
    store: &Store,
    app_id: &str,
    owner: &Owner,
    connection_ids: &[ConnectionId],
) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut erased = 0;
    for id in connection_ids {
        sqlx::query("DELETE FROM events WHERE app_id = $1 AND connection_id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM audit WHERE app_id = $1 AND connection_id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        erased += sqlx::query("DELETE FROM connections WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    sqlx::query("DELETE FROM connect_sessions WHERE app_id = $1 AND owner = $2")
        .bind(app_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(erased)
}

/// SQLite only: move the WAL into the database file and truncate it, so the
/// erased rows' old page images leave the `-wal` file too (with
/// `secure_delete` on, the freed space in the database file is zeroed).
/// Returns false when a reader kept the checkpoint from finishing.
pub async fn checkpoint(store: &Store) -> Result<bool, StoreError> {
    if store.backend() != Backend::Sqlite {
        return Ok(true);
    }
    // The busy handler (`busy_timeout`) already waits for readers; a few
    // more tries cover a reader that started a new snapshot meanwhile.
    for _ in 0..5 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(store.pool())
            .await?;
        if busy == 0 {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(false)
}
