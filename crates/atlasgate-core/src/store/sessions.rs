//! Connect sessions and the OAuth `state` values handed out for them.
//!
//! Only hashes of the state and of the browser-binding cookie are stored: a
//! database dump cannot be replayed against the callback.

use sqlx::{Any, AnyConnection, Executor};

use crate::ids::{ConnectionId, Owner};

text_enum! {
    /// Where a connect session is in its life (docs/design.md §3).
    pub enum SessionStatus {
        Pending = "pending",
        /// Consent given for several sites; the person picks one.
        AwaitingSite = "awaiting_site",
        Completed = "completed",
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub app_id: String,
    pub owner: Owner,
    pub profile: String,
    /// The requested scopes (a JSON array in the column).
    #[sqlx(try_from = "super::JsonText")]
    pub scopes: Vec<String>,
    pub return_to: Option<String>,
    pub status: SessionStatus,
    pub browser_hash: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

impl SessionRow {
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.clone()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StateRow {
    pub state_hash: String,
    pub session_id: String,
    pub browser_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const SESSION_COLUMNS: &str =
    "id, app_id, owner, profile, scopes, return_to, status, browser_hash, \
connection_id, created_at, expires_at, completed_at";

pub struct NewSession<'a> {
    pub id: &'a str,
    pub app_id: &'a str,
    pub owner: &'a Owner,
    pub profile: &'a str,
    pub scopes: &'a [String],
    pub return_to: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    s: &NewSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connect_sessions (id, app_id, owner, profile, scopes, return_to, status, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)",
    )
    .bind(s.id)
    .bind(s.app_id)
    .bind(s.owner)
    .bind(s.profile)
    .bind(super::AsJson(s.scopes))
    .bind(s.return_to)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn get<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    id: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM connect_sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(exec)
    .await
}

pub async fn insert_state<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    state_hash: &str,
    session_id: &str,
    browser_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connect_states (state_hash, session_id, browser_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(state_hash)
    .bind(session_id)
    .bind(browser_hash)
    .bind(now)
    .bind(expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn get_state<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    state_hash: &str,
) -> Result<Option<StateRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT state_hash, session_id, browser_hash, created_at, expires_at, used_at \
         FROM connect_states WHERE state_hash = $1",
    )
    .bind(state_hash)
    .fetch_optional(exec)
    .await
}

/// Consume a state exactly once; false if someone else already did.
pub async fn use_state(
    conn: &mut AnyConnection,
    state_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connect_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL",
    )
    .bind(state_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The callback succeeded: bind the session to its connection and browser.
pub async fn attach_connection(
    conn: &mut AnyConnection,
    id: &str,
    connection_id: &ConnectionId,
    browser_hash: &str,
    status: SessionStatus,
    now: i64,
) -> Result<(), sqlx::Error> {
    let completed_at = (status == SessionStatus::Completed).then_some(now);
    sqlx::query(
        "UPDATE connect_sessions SET connection_id = $2, browser_hash = $3, status = $4, completed_at = $5 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(connection_id)
    .bind(browser_hash)
    .bind(status.as_str())
    .bind(completed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Site chosen: `awaiting_site` → `completed`, once.
pub async fn complete(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connect_sessions SET status = 'completed', completed_at = $2 WHERE id = $1 AND status = 'awaiting_site'",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delete connect sessions and states that expired before `cutoff`.
pub async fn forget_expired(pool: &sqlx::AnyPool, cutoff: i64) -> Result<(), sqlx::Error> {
    for sql in FORGET_EXPIRED {
        sqlx::query(sql).bind(cutoff).execute(pool).await?;
    }
    Ok(())
}

/// [`forget_expired`]'s statements, states first (their plans are watched:
/// `stats::watched`).
pub(crate) const FORGET_EXPIRED: [&str; 2] = [
    "DELETE FROM connect_states WHERE expires_at < $1",
    "DELETE FROM connect_sessions WHERE expires_at < $1",
];
