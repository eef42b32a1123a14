//! Connections as apps see them: the one JSON shape of a connection (API
//! answers and every `connection.*` event's payload) and the outbox writes
//! that announce changes to them (docs/design.md §3, §6).

use serde::{Deserialize, Serialize};

use crate::atlassian::AccessibleSite;
use crate::ids::{ConnectionId, Owner};
use crate::store::connections::{self as rows, ConnectionRow, ConnectionStatus};
use crate::store::events::{self, NewEvent};

pub use crate::time::rfc3339;

// ---- events -------------------------------------------------------------------

/// Record an event in the outbox, inside the caller's transaction.
pub async fn emit_event(
    conn: &mut sqlx::AnyConnection,
    app_id: &str,
    connection_id: &ConnectionId,
    event_type: &str,
    payload: serde_json::Value,
    _now: i64,
) -> Result<(), sqlx::Error> {
    events::insert(
        conn,
        NewEvent {
            app_id,
            connection_id: Some(connection_id),
            event_type,
            payload,
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        crate::store::StoreError::Sqlx(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

/// `connection.created`, once the connection is complete (its site chosen).
/// Every `connection.*` event's payload is the connection as
/// [`ConnectionView`] shows it (`connection.needs_reauth` adds `reason`).
pub async fn emit_created(
    conn: &mut sqlx::AnyConnection,
    connection_id: &ConnectionId,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Some(row) = rows::get(&mut *conn, connection_id).await? else {
        return Ok(());
    };
    let payload = serde_json::to_value(ConnectionView::from_row(&row)).unwrap_or_default();
    emit_event(
        &mut *conn,
        &row.app_id,
        connection_id,
        "connection.created",
        payload,
        now,
    )
    .await?;
    // The person's browser, not the app, completed it: no client address
    // is attributed (the connect pages' addresses are in the request log).
    crate::audit::record(
        conn,
        crate::audit::kind::CONNECTION_CREATED,
        crate::audit::Subject::connection(&row.app_id, connection_id),
        &crate::audit::Actor::default(),
        serde_json::json!({ "profile": row.profile, "site_url": row.site_url }),
    )
    .await
}

/// Disconnect (docs/design.md §3, §13): delete the connection's Jira
/// webhooks while its token still works and stop its syncs, then wipe the
/// tokens, set `disconnected`, emit `connection.deleted` and record
/// `connection.disconnected`, and drop the cached token. Already
/// disconnected: nothing changes. Returns the row afterwards.
pub async fn disconnect(
    core: &crate::Core,
    row: &ConnectionRow,
    actor: &crate::audit::Actor,
) -> crate::Result<ConnectionRow> {
    let id = &row.id;
    if row.status() != ConnectionStatus::Disconnected {
        crate::sync::registration::on_disconnect(core, row).await;
    }
    let now = crate::store::now();
    let mut tx = core.store.begin_write().await?;
    let changed = rows::disconnect(&mut tx, id, now).await?;
    let after = rows::get(&mut *tx, id)
        .await?
        .ok_or(crate::Error::NotFound)?;
    if changed {
        let payload = serde_json::to_value(ConnectionView::from_row(&after))
            .map_err(crate::Error::internal)?;
        emit_event(&mut tx, &row.app_id, id, "connection.deleted", payload, now).await?;
        crate::audit::record(
            &mut *tx,
            crate::audit::kind::CONNECTION_DISCONNECTED,
            crate::audit::Subject::connection(&row.app_id, id),
            actor,
            serde_json::json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    // Visible to the next `/token` call at once (other processes: within a second).
    core.refresher.token_cache().invalidate(id);
    if changed {
        tracing::info!(connection_id = %id, "connection disconnected");
    }
    Ok(after)
}

/// The Atlassian account behind a connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A connection as the API shows it. Never a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub owner: Owner,
    pub profile: String,
    /// `active` | `needs_reauth` | `disconnected`.
    pub status: ConnectionStatus,
    /// Whether atlasgate holds a usable grant (status `active`).
    pub authenticated: bool,
    /// When the current access token expires (RFC 3339).
    pub expires_at: Option<String>,
    pub scopes: Vec<String>,
    /// Every site the grant covers.
    pub sites: Vec<AccessibleSite>,
    /// The selected site, if chosen.
    pub site: Option<AccessibleSite>,
    pub account: Option<Account>,
    pub connected_at: String,
    pub last_refreshed_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl ConnectionView {
    pub fn from_row(row: &ConnectionRow) -> ConnectionView {
        let status = row.status();
        ConnectionView {
            id: row.id.clone(),
            owner: row.owner.clone(),
            profile: row.profile.clone(),
            status,
            authenticated: status == ConnectionStatus::Active && row.access_token.is_some(),
            expires_at: row.access_expires_at.map(rfc3339),
            scopes: row.scope_list(),
            sites: row.site_list(),
            site: row.selected_site(),
            account: row.account_id.as_ref().map(|id| Account {
                account_id: id.clone(),
                email: row.account_email.clone(),
                name: row.account_name.clone(),
            }),
            connected_at: rfc3339(row.connected_at),
            last_refreshed_at: row.last_refreshed_at.map(rfc3339),
            last_used_at: row.last_used_at.map(rfc3339),
        }
    }
}
