//! Rows of the `audit` table (docs/design.md §14). Append-only: this file
//! has no UPDATE; rows leave only through retention and owner erase.

use sqlx::{Any, AnyPool, Executor};

use super::{Page, SqlBuilder};
use crate::ids::ConnectionId;

/// A record to append. `detail` is a JSON object without secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAudit {
    pub at: i64,
    pub kind: String,
    pub app_id: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub key_id: Option<String>,
    pub client_ip: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub app_id: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub key_id: Option<String>,
    pub client_ip: Option<String>,
    /// A JSON object in the column.
    #[sqlx(try_from = "super::JsonText")]
    pub detail: serde_json::Value,
}

pub async fn insert<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    a: &NewAudit,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit (at, kind, app_id, connection_id, key_id, client_ip, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.at)
    .bind(&a.kind)
    .bind(a.app_id.clone())
    .bind(a.connection_id.clone())
    .bind(a.key_id.clone())
    .bind(a.client_ip.clone())
    .bind(super::AsJson(&a.detail))
    .execute(exec)
    .await?;
    Ok(())
}

/// Append many records in one transaction (the `token.served` flush).
pub async fn insert_all(pool: &AnyPool, rows: &[NewAudit]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for a in rows {
        insert(&mut *tx, a).await?;
    }
    tx.commit().await
}

/// What `GET /admin/api/audit` filters by.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub app_id: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub kind: Option<String>,
    /// Only records with `seq` below this (the cursor).
    pub before_seq: Option<i64>,
}

/// Newest first.
pub async fn page(
    pool: &AnyPool,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Page<AuditRow>, sqlx::Error> {
    let mut q = SqlBuilder::new(
        "SELECT seq, at, kind, app_id, connection_id, key_id, client_ip, detail FROM audit WHERE 1 = 1",
    );
    if let Some(a) = &filter.app_id {
        q.push(" AND app_id = ").push_bind(a.clone());
    }
    if let Some(c) = &filter.connection_id {
        q.push(" AND connection_id = ").push_bind(c.clone());
    }
    if let Some(k) = &filter.kind {
        q.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(s) = filter.before_seq {
        q.push(" AND seq < ").push_bind(s);
    }
    super::fetch_page(pool, q, "seq DESC", limit).await
}
