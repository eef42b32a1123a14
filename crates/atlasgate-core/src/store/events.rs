//! The event outbox (`events`): written in the same transaction as the change
//! it announces, delivered later by the webhook worker.

use sqlx::{Any, AnyPool, Executor};

use super::{new_id, now, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub app_id: String,
    pub connection_id: Option<String>,
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// JSON.
    pub payload: String,
    pub created_at: i64,
    /// `pending` | `delivered` | `failed` | `skipped`.
    pub delivery_state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "seq, id, app_id, connection_id, type, payload, created_at, delivery_state, \
     attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

/// A new event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub app_id: &'a str,
    pub connection_id: Option<&'a str>,
    /// e.g. `connection.created`.
    pub event_type: &'a str,
    pub payload: serde_json::Value,
}

/// Insert an event (pass a transaction to make it atomic with the change).
/// Returns the event id.
pub async fn insert<'e, E>(executor: E, event: NewEvent<'_>) -> Result<String, StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let id = new_id();
    let now = now();
    sqlx::query(
        "INSERT INTO events (id, app_id, connection_id, type, payload, created_at, \
         delivery_state, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7)",
    )
    .bind(&id)
    .bind(event.app_id)
    .bind(event.connection_id.map(str::to_string))
    .bind(event.event_type)
    .bind(event.payload.to_string())
    .bind(now)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(id)
}

/// The most recent events, newest first; optionally of one app.
pub async fn recent(
    pool: &AnyPool,
    app_id: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let rows = match app_id {
        Some(app) => {
            sqlx::query_as::<_, EventRow>(&format!(
                "SELECT {COLUMNS} FROM events WHERE app_id = $1 ORDER BY seq DESC LIMIT $2"
            ))
            .bind(app)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as::<_, EventRow>(&format!(
                "SELECT {COLUMNS} FROM events ORDER BY seq DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// An event's delivery as the admin dashboard lists it (no payload).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub seq: i64,
    pub id: String,
    pub app_name: String,
    pub connection_id: Option<String>,
    /// The connection's owner while the connection exists.
    pub connection_owner: Option<String>,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub created_at: i64,
    /// `pending` | `delivered` | `failed` | `skipped`.
    pub delivery_state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

/// The latest deliveries of every app, newest first.
pub async fn recent_deliveries(pool: &AnyPool, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "SELECT e.seq, e.id, a.name AS app_name, e.connection_id, c.owner AS connection_owner, e.type, \
         e.created_at, e.delivery_state, e.attempts, e.next_attempt_at, e.last_attempt_at, e.last_status, \
         e.last_error, e.delivered_at \
         FROM events e JOIN apps a ON a.id = e.app_id LEFT JOIN connections c ON c.id = e.connection_id \
         ORDER BY e.seq DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One page of an app's events, newest first: those with `seq < before`,
/// optionally of one connection and one type.
pub async fn list_for_app(
    pool: &AnyPool,
    app_id: &str,
    before: i64,
    connection_id: Option<&str>,
    event_type: Option<&str>,
    limit: i64,
) -> Result<super::Page<EventRow>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE app_id = "));
    q.push_bind(app_id.to_string())
        .push(" AND seq < ")
        .push_bind(before);
    if let Some(c) = connection_id {
        q.push(" AND connection_id = ").push_bind(c.to_string());
    }
    if let Some(t) = event_type {
        q.push(" AND type = ").push_bind(t.to_string());
    }
    super::fetch_page(pool, q, "seq DESC", limit).await
}
