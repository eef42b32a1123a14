//! Rows of `connections`: the grant, its encrypted tokens and the refresh mark.
//!
//! Every function takes an executor so callers choose between the pool and a
//! transaction. Ciphertexts are opaque here; `vault::token` seals and opens them.

use sqlx::{Any, AnyConnection, AnyPool, Executor};

use super::Backend;
use crate::ids::{CloudId, ConnectionId, Owner};

text_enum! {
    /// Lifecycle of a connection (docs/design.md §2).
    pub enum ConnectionStatus {
        Active = "active",
        NeedsReauth = "needs_reauth",
        Disconnected = "disconnected",
    }
}

/// One `connections` row as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: ConnectionId,
    pub app_id: String,
    pub owner: Owner,
    pub profile: String,
    pub status: ConnectionStatus,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub account_name: Option<String>,
    /// The granted scopes (a JSON array in the column).
    #[sqlx(try_from = "super::JsonText")]
    pub scopes: Vec<String>,
    /// The grant's sites (a JSON array in the column).
    #[sqlx(try_from = "super::JsonText")]
    pub sites: Vec<crate::atlassian::AccessibleSite>,
    pub site_cloud_id: Option<CloudId>,
    pub site_url: Option<String>,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub access_expires_at: Option<i64>,
    pub refresh_issued_at: Option<i64>,
    pub token_version: i64,
    pub refresh_inflight_token: Option<Vec<u8>>,
    pub refresh_started_at: Option<i64>,
    pub refresh_lease_until: Option<i64>,
    pub refresh_attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_refresh_error: Option<String>,
    pub connected_at: i64,
    pub last_refreshed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub disconnected_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ConnectionRow {
    // Ciphertexts are not secrets, but they are noise; keep them out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRow")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("owner", &self.owner)
            .field("profile", &self.profile)
            .field("status", &self.status)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

impl ConnectionRow {
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.clone()
    }

    pub fn site_list(&self) -> Vec<crate::atlassian::AccessibleSite> {
        self.sites.clone()
    }

    pub fn selected_site(&self) -> Option<crate::atlassian::AccessibleSite> {
        let id = self.site_cloud_id.as_deref()?;
        self.sites.iter().find(|s| s.cloud_id == id).cloned()
    }
}

pub const COLUMNS: &str = "id, app_id, owner, profile, status, account_id, account_email, account_name, \
scopes, sites, site_cloud_id, site_url, access_token, refresh_token, access_expires_at, refresh_issued_at, \
token_version, refresh_inflight_token, refresh_started_at, refresh_lease_until, refresh_attempts, \
next_attempt_at, last_refresh_error, connected_at, last_refreshed_at, last_used_at, disconnected_at, \
created_at, updated_at";

/// A new, time-ordered connection id (`con_` + 12 hex digits of milliseconds +
/// 16 random hex digits): sorting by id is sorting by creation, which makes
/// cursor pagination a plain `id > $cursor`.
pub fn new_id() -> ConnectionId {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let random: u64 = rand::random();
    ConnectionId::new(format!("con_{millis:012x}{random:016x}"))
}

pub async fn get<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM connections WHERE id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await
}

/// The app's own connection, or nothing: another app's id reads as missing.
pub async fn get_for_app(
    pool: &AnyPool,
    app_id: &str,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connections WHERE id = $1 AND app_id = $2"
    ))
    .bind(id)
    .bind(app_id)
    .fetch_optional(pool)
    .await
}

/// Read a row inside a write transaction, locking it on PostgreSQL (SQLite's
/// `BEGIN IMMEDIATE` already holds the database's write lock).
pub async fn get_locked(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connections WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_owner(
    conn: &mut AnyConnection,
    app_id: &str,
    owner: &Owner,
    profile: &str,
) -> Result<Option<ConnectionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connections WHERE app_id = $1 AND owner = $2 AND profile = $3"
    ))
    .bind(app_id)
    .bind(owner)
    .bind(profile)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Default)]
pub struct ListFilter {
    pub owner: Option<Owner>,
    pub profile: Option<String>,
    pub status: Option<ConnectionStatus>,
    /// Only ids greater than this (the previous page's last id).
    pub after: Option<String>,
}

/// One page of an app's connections, by id.
pub async fn list_for_app(
    pool: &AnyPool,
    app_id: &str,
    filter: &ListFilter,
    limit: i64,
) -> Result<super::Page<ConnectionRow>, sqlx::Error> {
    let mut q =
        super::SqlBuilder::new(format!("SELECT {COLUMNS} FROM connections WHERE app_id = "));
    q.push_bind(app_id.to_string());
    let status = filter.status.map(|s| s.as_str().to_string());
    let owner = filter.owner.as_ref().map(|o| o.to_string());
    for (column, value) in [
        (" AND owner = ", &owner),
        (" AND profile = ", &filter.profile),
        (" AND status = ", &status),
        (" AND id > ", &filter.after),
    ] {
        if let Some(value) = value {
            q.push(column).push_bind(value.clone());
        }
    }
    super::fetch_page(pool, q, "id", limit.clamp(1, 1000)).await
}

/// Every connection of every app (the `connections list` command).
pub async fn list_all(pool: &AnyPool) -> Result<Vec<ConnectionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connections ORDER BY app_id, id"
    ))
    .fetch_all(pool)
    .await
}

/// What a successful consent stores.
pub struct NewGrant<'a> {
    pub account_id: &'a str,
    pub account_email: Option<&'a str>,
    pub account_name: Option<&'a str>,
    pub scopes: &'a [String],
    pub sites: &'a [crate::atlassian::AccessibleSite],
    pub site_cloud_id: Option<&'a CloudId>,
    pub site_url: Option<&'a str>,
    pub access_token: &'a [u8],
    pub refresh_token: Option<&'a [u8]>,
    pub access_expires_at: i64,
}

/// Binds a grant's values, in the order both `insert` and `replace_grant`
/// number them: account, scopes, sites, site, tokens, expiry,
/// refresh_issued_at, now.
fn bind_grant<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    grant: &NewGrant<'q>,
    now: i64,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(grant.account_id)
        .bind(grant.account_email)
        .bind(grant.account_name)
        .bind(super::AsJson(grant.scopes))
        .bind(super::AsJson(grant.sites))
        .bind(grant.site_cloud_id)
        .bind(grant.site_url)
        .bind(grant.access_token)
        .bind(grant.refresh_token)
        .bind(grant.access_expires_at)
        .bind(grant.refresh_token.map(|_| now))
        .bind(now)
}

pub async fn insert(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    app_id: &str,
    owner: &Owner,
    profile: &str,
    grant: &NewGrant<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "INSERT INTO connections (id, app_id, owner, profile, status, account_id, account_email, account_name, \
         scopes, sites, site_cloud_id, site_url, access_token, refresh_token, access_expires_at, refresh_issued_at, \
         token_version, refresh_attempts, connected_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, 0, $16, $16, $16)",
    )
    .bind(id)
    .bind(app_id)
    .bind(owner)
    .bind(profile);
    bind_grant(query, grant, now).execute(conn).await?;
    Ok(())
}

/// A reconnect: new grant, same id; any refresh mark of the old family is void.
pub async fn replace_grant(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    grant: &NewGrant<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE connections SET status = 'active', account_id = $2, account_email = $3, account_name = $4, \
         scopes = $5, sites = $6, site_cloud_id = $7, site_url = $8, access_token = $9, refresh_token = $10, \
         access_expires_at = $11, refresh_issued_at = $12, token_version = token_version + 1, \
         refresh_inflight_token = NULL, refresh_started_at = NULL, refresh_lease_until = NULL, \
         refresh_attempts = 0, next_attempt_at = NULL, last_refresh_error = NULL, \
         connected_at = $13, disconnected_at = NULL, updated_at = $13 WHERE id = $1",
    )
    .bind(id);
    bind_grant(query, grant, now).execute(conn).await?;
    Ok(())
}

pub async fn set_site<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    id: &ConnectionId,
    cloud_id: &CloudId,
    url: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET site_cloud_id = $2, site_url = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(cloud_id)
    .bind(url)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}

/// How many ids one [`touch_used`] statement names at most.
pub const TOUCH_USED_CHUNK: usize = 500;

/// [`touch_used`]'s statement for one chunk of ids (its plan is watched:
/// `stats::watched`): primary-key lookups, and `last_used_at` never moves
/// backwards (another process may have written a later use).
pub(crate) fn touch_used_statement(ids: &[ConnectionId], at: i64) -> super::SqlBuilder {
    let mut q = super::SqlBuilder::new("UPDATE connections SET last_used_at = ");
    q.push_bind(at)
        .push(" WHERE (last_used_at IS NULL OR last_used_at < $1) AND id IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_bind(id.clone());
    }
    q.push(")");
    q
}

/// Record that `ids` were used at `at`, [`TOUCH_USED_CHUNK`] per statement
/// (the batched writes of `last_used::LastUsed`); how many rows changed.
pub async fn touch_used(pool: &AnyPool, ids: &[ConnectionId], at: i64) -> Result<u64, sqlx::Error> {
    let mut changed = 0;
    for chunk in ids.chunks(TOUCH_USED_CHUNK) {
        changed += touch_used_statement(chunk, at)
            .query()
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(changed)
}

/// Disconnect: wipe every token, keep the row (and its id) for history.
/// Returns false when the connection was already disconnected.
pub async fn disconnect(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connections SET status = 'disconnected', access_token = NULL, refresh_token = NULL, \
         refresh_inflight_token = NULL, refresh_started_at = NULL, refresh_lease_until = NULL, \
         access_expires_at = NULL, next_attempt_at = NULL, disconnected_at = $2, updated_at = $2 \
         WHERE id = $1 AND status <> 'disconnected'",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---- the refresh mark (docs/design.md §4) -------------------------------------------

/// Write the in-flight mark before calling Atlassian.
pub async fn set_refresh_mark(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    old_refresh_token: &[u8],
    started_at: i64,
    lease_until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET refresh_inflight_token = $2, refresh_started_at = $3, \
         refresh_lease_until = $4, refresh_attempts = refresh_attempts + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(old_refresh_token)
    .bind(started_at)
    .bind(lease_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Take over a stale mark (its owner lost the answer or died): extend the lease.
pub async fn renew_refresh_lease(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    lease_until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET refresh_lease_until = $2, refresh_attempts = refresh_attempts + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(lease_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// The new pair, stored in the same statement that clears the mark. Guarded by
/// the mark's `started_at`: if the mark is no longer ours, nothing changes.
#[allow(clippy::too_many_arguments)]
pub async fn store_refreshed(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    mark_started_at: i64,
    access_token: &[u8],
    refresh_token: &[u8],
    access_expires_at: i64,
    refresh_issued_at: i64,
    scopes: Option<&[String]>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connections SET access_token = $3, refresh_token = $4, access_expires_at = $5, \
         refresh_issued_at = $6, scopes = COALESCE($7, scopes), token_version = token_version + 1, \
         refresh_inflight_token = NULL, refresh_started_at = NULL, refresh_lease_until = NULL, \
         refresh_attempts = 0, next_attempt_at = NULL, last_refresh_error = NULL, \
         last_refreshed_at = $8, updated_at = $8 \
         WHERE id = $1 AND refresh_started_at = $2 AND status = 'active'",
    )
    .bind(id)
    .bind(mark_started_at)
    .bind(access_token)
    .bind(refresh_token)
    .bind(access_expires_at)
    .bind(refresh_issued_at)
    .bind(scopes.map(super::AsJson))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A transient failure: release the lease (keep the mark, so the next attempt
/// reuses the same old token inside the reuse window) and back off.
pub async fn release_after_failure(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    mark_started_at: i64,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET refresh_lease_until = NULL, next_attempt_at = $3, last_refresh_error = $4, \
         updated_at = $5 WHERE id = $1 AND refresh_started_at = $2",
    )
    .bind(id)
    .bind(mark_started_at)
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// `active` → `needs_reauth`, exactly once (the caller emits the event only
/// when this returns true). Clears the mark and the dead tokens' backoff.
pub async fn mark_needs_reauth(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    error: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connections SET status = 'needs_reauth', refresh_inflight_token = NULL, \
         refresh_started_at = NULL, refresh_lease_until = NULL, next_attempt_at = NULL, \
         last_refresh_error = $2, updated_at = $3 WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`keepalive_candidates`]' statement: a range search on
/// `connections_keepalive (status, refresh_issued_at)`.
pub(crate) const KEEPALIVE_CANDIDATES: &str =
    "SELECT id FROM connections WHERE status = 'active' AND refresh_token IS NOT NULL \
     AND refresh_issued_at < $1 ORDER BY refresh_issued_at LIMIT $2";

/// Active connections whose refresh token was issued before `issued_before`
/// (keep-alive candidates), oldest first.
pub async fn keepalive_candidates(
    pool: &AnyPool,
    issued_before: i64,
    limit: i64,
) -> Result<Vec<ConnectionId>, sqlx::Error> {
    sqlx::query_scalar(KEEPALIVE_CANDIDATES)
        .bind(issued_before)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// One connection as the admin dashboard shows it, with its app's name.
#[derive(Debug, sqlx::FromRow)]
pub struct ConnectionLine {
    pub id: ConnectionId,
    pub app_name: String,
    pub owner: Owner,
    pub profile: String,
    pub status: ConnectionStatus,
    pub account_email: Option<String>,
    pub site_url: Option<String>,
    pub access_expires_at: Option<i64>,
    pub refresh_issued_at: Option<i64>,
    pub last_refreshed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_refresh_error: Option<String>,
}

/// The 200 most recently changed connections, for the admin dashboard.
pub async fn dashboard_lines(pool: &AnyPool) -> Result<Vec<ConnectionLine>, sqlx::Error> {
    sqlx::query_as::<_, ConnectionLine>(
        "SELECT c.id, a.name AS app_name, c.owner, c.profile, c.status, c.account_email, \
         c.site_url, c.access_expires_at, c.refresh_issued_at, c.last_refreshed_at, \
         c.last_used_at, c.last_refresh_error \
         FROM connections c JOIN apps a ON a.id = c.app_id \
         ORDER BY c.updated_at DESC LIMIT 200",
    )
    .fetch_all(pool)
    .await
}

/// [`stale_refresh_marks`]' statement: an equality search on the partial
/// index `connections_refresh_marks (status, refresh_lease_until) WHERE
/// refresh_inflight_token IS NOT NULL` (migration 0011), which holds only the
/// rows with a mark. With the index on `refresh_lease_until` alone, SQLite
/// chose `connections_keepalive (status=?)` and visited every active row.
pub(crate) const STALE_REFRESH_MARKS: &str =
    "SELECT id FROM connections WHERE status = 'active' AND refresh_inflight_token IS NOT NULL \
     AND (refresh_lease_until IS NULL OR refresh_lease_until < $1) LIMIT $2";

/// Connections with an abandoned in-flight refresh (lease lapsed).
pub async fn stale_refresh_marks(
    pool: &AnyPool,
    now: i64,
    limit: i64,
) -> Result<Vec<ConnectionId>, sqlx::Error> {
    sqlx::query_scalar(STALE_REFRESH_MARKS)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
}

// ---- imports (docs/importing.md) ------------------------------------------------------

#[derive(sqlx::FromRow)]
struct ImportedRow {
    #[sqlx(flatten)]
    row: ConnectionRow,
    imported_token_sha256: Option<String>,
}

/// The (app, owner, profile) connection with the SHA-256 of the refresh
/// token it was imported with (`None` for a connection made by consent).
/// Uses the `UNIQUE (app_id, owner, profile)` index.
pub async fn find_imported<'c, E: Executor<'c, Database = Any>>(
    exec: E,
    app_id: &str,
    owner: &Owner,
    profile: &str,
) -> Result<Option<(ConnectionRow, Option<String>)>, sqlx::Error> {
    let found: Option<ImportedRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, imported_token_sha256 FROM connections \
         WHERE app_id = $1 AND owner = $2 AND profile = $3"
    ))
    .bind(app_id)
    .bind(owner)
    .bind(profile)
    .fetch_optional(exec)
    .await?;
    Ok(found.map(|f| (f.row, f.imported_token_sha256)))
}

/// Remember which refresh token a connection was imported with (its hash).
pub async fn set_imported_token_hash(
    conn: &mut AnyConnection,
    id: &ConnectionId,
    sha256_hex: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET imported_token_sha256 = $2 WHERE id = $1")
        .bind(id)
        .bind(sha256_hex)
        .execute(conn)
        .await?;
    Ok(())
}
