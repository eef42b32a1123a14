//! The event outbox (`events`): written in the same transaction as the change
//! it announces, delivered later by the webhook worker.

use sqlx::{Any, AnyPool, Executor};

use super::{new_id, now, StoreError};
use crate::ids::ConnectionId;

text_enum! {
    /// Where an outbox event is in its delivery (docs/design.md §6).
    pub enum DeliveryState {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
        /// Nothing to deliver to (the app has no webhook URL).
        Skipped = "skipped",
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub app_id: String,
    pub connection_id: Option<ConnectionId>,
    #[sqlx(rename = "type")]
    pub event_type: String,
    #[sqlx(try_from = "super::JsonText")]
    pub payload: serde_json::Value,
    pub created_at: i64,
    pub delivery_state: DeliveryState,
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
    pub connection_id: Option<&'a ConnectionId>,
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
    .bind(event.connection_id.cloned())
    .bind(event.event_type)
    .bind(super::AsJson(&event.payload))
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
    pub connection_id: Option<ConnectionId>,
    /// The connection's owner while the connection exists.
    pub connection_owner: Option<String>,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub created_at: i64,
    pub delivery_state: DeliveryState,
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
    connection_id: Option<&ConnectionId>,
    event_type: Option<&str>,
    limit: i64,
) -> Result<super::Page<EventRow>, sqlx::Error> {
    let mut q = super::SqlBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE app_id = "));
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

/// An event claimed for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub seq: i64,
    pub id: String,
    pub app_id: String,
    pub connection_id: Option<ConnectionId>,
    #[sqlx(rename = "type")]
    pub event_type: String,
    #[sqlx(try_from = "super::JsonText")]
    pub payload: serde_json::Value,
    pub created_at: i64,
    pub attempts: i64,
    pub first_attempt_at: Option<i64>,
}

/// Claim up to `limit` due events for worker `me` until `lease_until`: the
/// oldest pending event of each connection (or of an app, for app-wide
/// events), so each connection's events go out in order.
pub async fn claim_due(
    store: &super::Store,
    me: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<DueEvent>, StoreError> {
    let mut tx = store.begin_write().await?;
    let sql = format!(
        "SELECT seq, id, app_id, connection_id, type, payload, created_at, attempts, first_attempt_at FROM events e \
         WHERE e.delivery_state = 'pending' AND e.next_attempt_at <= $1 \
           AND (e.locked_until IS NULL OR e.locked_until < $1) \
           AND NOT EXISTS (SELECT 1 FROM events p WHERE p.delivery_state = 'pending' AND p.seq < e.seq \
               AND ((e.connection_id IS NOT NULL AND p.connection_id = e.connection_id) \
                 OR (e.connection_id IS NULL AND p.connection_id IS NULL AND p.app_id = e.app_id))) \
         ORDER BY e.seq LIMIT $2{}",
        store.for_update_skip_locked()
    );
    let rows: Vec<DueEvent> = sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    for r in &rows {
        sqlx::query("UPDATE events SET locked_by = $1, locked_until = $2 WHERE seq = $3")
            .bind(me)
            .bind(lease_until)
            .bind(r.seq)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// The app answered 2xx: delivered (only if `me` still holds the claim).
pub async fn mark_delivered(
    pool: &AnyPool,
    seq: i64,
    me: &str,
    status: u16,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE events SET delivery_state = 'delivered', attempts = attempts + 1, \
         last_attempt_at = $1, first_attempt_at = COALESCE(first_attempt_at, $1), \
         last_status = $2, last_error = NULL, delivered_at = $1, \
         locked_by = NULL, locked_until = NULL WHERE seq = $3 AND locked_by = $4",
    )
    .bind(now)
    .bind(i64::from(status))
    .bind(seq)
    .bind(me)
    .execute(pool)
    .await?;
    Ok(())
}

/// Nothing to deliver to (no webhook URL): skipped, with the reason.
pub async fn mark_skipped(
    pool: &AnyPool,
    seq: i64,
    me: &str,
    why: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE events SET delivery_state = 'skipped', last_error = $1, \
         locked_by = NULL, locked_until = NULL WHERE seq = $2 AND locked_by = $3",
    )
    .bind(why)
    .bind(seq)
    .bind(me)
    .execute(pool)
    .await?;
    Ok(())
}

/// A failed attempt: retried at `next_attempt_at`, or `failed` when giving up.
#[derive(Debug)]
pub struct FailedAttempt<'a> {
    pub seq: i64,
    pub me: &'a str,
    pub give_up: bool,
    pub status: Option<u16>,
    pub error: &'a str,
    pub next_attempt_at: i64,
    pub now: i64,
}

pub async fn mark_failed(pool: &AnyPool, f: FailedAttempt<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE events SET delivery_state = $1, attempts = attempts + 1, last_attempt_at = $2, \
         first_attempt_at = COALESCE(first_attempt_at, $2), \
         last_status = $3, last_error = $4, next_attempt_at = $5, \
         locked_by = NULL, locked_until = NULL WHERE seq = $6 AND locked_by = $7",
    )
    .bind(if f.give_up {
        DeliveryState::Failed
    } else {
        DeliveryState::Pending
    })
    .bind(f.now)
    .bind(f.status.map(i64::from))
    .bind(f.error)
    .bind(f.next_attempt_at)
    .bind(f.seq)
    .bind(f.me)
    .execute(pool)
    .await?;
    Ok(())
}
