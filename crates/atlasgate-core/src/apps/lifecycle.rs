//! An app's life after creation (docs/design.md §13): update, more keys,
//! revocation, webhook-secret rotation, deletion, and erasing one owner.
//! Each action is recorded in the audit trail.

use serde_json::json;
use url::Url;

use super::types::{ApiKey, AppName, ReturnOrigin, WebhookSecret};
use super::{App, AppsError};
use crate::audit::{self, kind, Actor, Subject};
use crate::ids::{ConnectionId, Owner};
use crate::store::apps::{self as rows, AppRow};
use crate::store::{self, app_keys, erase, Store};
use crate::vault::{Cipher, APP_WEBHOOK_SECRET, APP_WEBHOOK_SECRET_OLD};
use crate::{Core, Error, Result};

/// `key_` + 32 hex digits.
pub fn new_key_id() -> String {
    format!("key_{}", uuid::Uuid::new_v4().simple())
}

fn conflict_on_name(e: crate::store::StoreError, name: &str) -> Error {
    if e.is_unique_violation() {
        AppsError::NameTaken(name.to_string()).into()
    } else {
        e.into()
    }
}

/// The app named by `app`: its id, else its name (`APP` of the CLI and the
/// admin routes). Another spelling answers [`Error::NotFound`].
pub async fn resolve(store: &Store, app: &str) -> Result<App> {
    let row = match rows::by_id(store.pool(), app).await? {
        Some(r) => Some(r),
        None => rows::by_name(store.pool(), app).await?,
    };
    row.as_ref()
        .map(App::from_row)
        .transpose()?
        .ok_or(Error::NotFound)
}

async fn row_of(store: &Store, app_id: &str) -> Result<AppRow> {
    rows::by_id(store.pool(), app_id)
        .await?
        .ok_or(Error::NotFound)
}

/// What `PATCH /admin/api/apps/{app}` may change; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct AppUpdate {
    pub name: Option<AppName>,
    /// `Some(None)` removes the webhook URL (events are then `skipped`).
    pub webhook_url: Option<Option<Url>>,
    pub return_origins: Option<Vec<ReturnOrigin>>,
}

/// The app after an update, and its new webhook secret when the update gave
/// a URL to an app that had no secret yet (shown this once).
#[derive(Debug)]
pub struct UpdatedApp {
    pub app: App,
    pub webhook_secret: Option<WebhookSecret>,
}

pub async fn update(
    store: &Store,
    cipher: &Cipher,
    app_id: &str,
    change: AppUpdate,
    actor: &Actor,
) -> Result<UpdatedApp> {
    let mut row = row_of(store, app_id).await?;
    let mut changed = Vec::new();
    if let Some(name) = &change.name {
        if row.name != name.as_str() {
            row.name = name.as_str().to_string();
            changed.push("name");
        }
    }
    let mut new_secret = None;
    if let Some(url) = &change.webhook_url {
        let url = url.as_ref().map(|u| u.to_string());
        if row.webhook_url != url {
            row.webhook_url = url;
            changed.push("webhook_url");
        }
        if row.webhook_url.is_some() && row.webhook_secret_ct.is_none() {
            let secret = WebhookSecret::generate();
            row.webhook_secret_ct =
                Some(cipher.encrypt(secret.expose().as_bytes(), &APP_WEBHOOK_SECRET.aad(app_id))?);
            new_secret = Some(secret);
        }
    }
    if let Some(origins) = &change.return_origins {
        let list: Vec<String> = origins.iter().map(|o| o.as_str().to_string()).collect();
        if row.return_origins != list {
            row.return_origins = list;
            changed.push("return_origins");
        }
    }
    if !rows::update(store.pool(), &row)
        .await
        .map_err(|e| conflict_on_name(e, &row.name))?
    {
        return Err(Error::NotFound);
    }
    audit::record_after(
        store,
        kind::APP_UPDATED,
        Subject::app(app_id),
        actor,
        json!({ "changed": changed, "webhook_secret_created": new_secret.is_some() }),
    )
    .await;
    Ok(UpdatedApp {
        app: App::from_row(&row)?,
        webhook_secret: new_secret,
    })
}

/// One key as listed (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub id: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A new key, in clear this once.
#[derive(Debug)]
pub struct CreatedKey {
    pub id: String,
    pub key: ApiKey,
}

pub async fn create_key(store: &Store, app_id: &str, actor: &Actor) -> Result<CreatedKey> {
    row_of(store, app_id).await?;
    let key = ApiKey::generate();
    let id = new_key_id();
    app_keys::insert(
        store.pool(),
        &id,
        app_id,
        &key.hash(),
        &key.prefix(),
        store::now(),
    )
    .await?;
    audit::record_after(
        store,
        kind::KEY_CREATED,
        Subject::key(app_id, &id),
        actor,
        json!({ "prefix": key.prefix() }),
    )
    .await;
    tracing::info!(app_id, key_id = %id, "app key created");
    Ok(CreatedKey { id, key })
}

pub async fn list_keys(store: &Store, app_id: &str) -> Result<Vec<AppKey>> {
    row_of(store, app_id).await?;
    Ok(app_keys::list(store.pool(), app_id)
        .await?
        .into_iter()
        .map(|k| AppKey {
            id: k.id,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        })
        .collect())
}

/// Revoke (delete) one key of an app. Returns the key's hash, which the
/// caller drops from its key cache at once; other processes' caches let
/// it go within their TTL.
pub async fn revoke_key(
    store: &Store,
    app_id: &str,
    key_id: &str,
    actor: &Actor,
) -> Result<()> {
    app_keys::delete(store.pool(), app_id, key_id)
        .await?
        .ok_or(Error::NotFound)?;
    audit::record_after(
        store,
        kind::KEY_REVOKED,
        Subject::key(app_id, key_id),
        actor,
        json!({}),
    )
    .await;
    tracing::info!(app_id, key_id, "app key revoked");
    Ok(())
}

/// A new webhook signing secret. The current one becomes the old one and
/// keeps signing (a second `v1,` entry) for `overlap_secs`; a secret older
/// than that is dropped. An app without a webhook URL gets one for later.
pub async fn rotate_webhook_secret(
    store: &Store,
    cipher: &Cipher,
    app_id: &str,
    overlap_secs: u64,
    actor: &Actor,
) -> Result<WebhookSecret> {
    let mut row = row_of(store, app_id).await?;
    let now = store::now();
    let secret = WebhookSecret::generate();
    // The old ciphertext moves to the other column: re-encrypted, since
    // the associated data names the column.
    let old = match &row.webhook_secret_ct {
        Some(ct) if overlap_secs > 0 => {
            let plain = cipher.decrypt_string(ct, &APP_WEBHOOK_SECRET.aad(app_id))?;
            Some(cipher.encrypt(
                secrecy::ExposeSecret::expose_secret(&plain).as_bytes(),
                &APP_WEBHOOK_SECRET_OLD.aad(app_id),
            )?)
        }
        _ => None,
    };
    row.webhook_secret_old_until = old.as_ref().map(|_| now + overlap_secs as i64);
    row.webhook_secret_old_ct = old;
    row.webhook_secret_ct =
        Some(cipher.encrypt(secret.expose().as_bytes(), &APP_WEBHOOK_SECRET.aad(app_id))?);
    if !rows::update(store.pool(), &row).await? {
        return Err(Error::NotFound);
    }
    audit::record_after(
        store,
        kind::WEBHOOK_SECRET_ROTATED,
        Subject::app(app_id),
        actor,
        json!({ "old_secret_signs_until": row.webhook_secret_old_until.map(crate::time::rfc3339) }),
    )
    .await;
    tracing::info!(app_id, "webhook secret rotated");
    Ok(secret)
}

/// Delete an app: every connection disconnected first (its Jira webhooks
/// deleted while its tokens still work), then the app row, which takes its
/// keys, connections, connect sessions, syncs, synced issues and pending
/// events with it. Returns how many connections were disconnected. The
/// caller drops the app from its key cache.
pub async fn delete(core: &Core, app_id: &str, actor: &Actor) -> Result<u64> {
    let row = row_of(&core.store, app_id).await?;
    let mut disconnected = 0;
    for c in erase::app_connections(core.store.pool(), app_id).await? {
        crate::connections::disconnect(core, &c, actor).await?;
        disconnected += 1;
    }
    if !rows::delete(core.store.pool(), app_id).await? {
        return Err(Error::NotFound);
    }
    audit::record_after(
        &core.store,
        kind::APP_DELETED,
        Subject::app(app_id),
        actor,
        json!({ "name": row.name, "connections": disconnected }),
    )
    .await;
    tracing::info!(app_id, connections = disconnected, "app deleted");
    Ok(disconnected)
}

/// Erase an owner of one app (docs/design.md §13): each of its connections
/// (every profile) disconnected as [`delete`] does, then deleted with its
/// syncs, synced issues, events and audit records, and the owner's connect
/// sessions. On SQLite the WAL is checkpointed and truncated afterwards so
/// no copy of the rows stays in it. The `owner.erased` record does not name
/// the owner. Returns how many connections were erased.
pub async fn erase_owner(core: &Core, app_id: &str, owner: &Owner, actor: &Actor) -> Result<u64> {
    let rows = erase::owner_connections(core.store.pool(), app_id, owner).await?;
    for c in &rows {
        crate::connections::disconnect(core, c, actor).await?;
    }
    let ids: Vec<ConnectionId> = rows.iter().map(|r| r.id.clone()).collect();
    let erased = erase::erase_owner(&core.store, app_id, owner, &ids).await?;
    for id in &ids {
        core.refresher.token_cache().invalidate(id);
        core.token_served.forget_connection(id);
    }
    audit::record_after(
        &core.store,
        kind::OWNER_ERASED,
        Subject::app(app_id),
        actor,
        json!({ "connections_erased": erased }),
    )
    .await;
    if !erase::checkpoint(&core.store).await? {
        tracing::warn!(app_id, "the WAL checkpoint after an owner erase could not finish (a reader was active); it completes at the next checkpoint");
    }
    tracing::info!(app_id, connections = erased, "owner erased");
    Ok(erased)
}
