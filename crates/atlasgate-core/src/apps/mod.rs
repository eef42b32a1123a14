//! Apps: the clients of atlasgate, each with an API key (`agk_…`, stored only
//! as a SHA-256 hash), an optional webhook URL with its signing secret
//! (`whsec_…`, stored encrypted so events can be signed), and the origins a
//! connect flow may return to.

pub mod lifecycle;
pub mod types;

use secrecy::SecretString;
use url::Url;

pub use lifecycle::{AppKey, AppUpdate, CreatedKey, UpdatedApp};
pub use types::{parse_webhook_url, ApiKey, AppName, ReturnOrigin, WebhookSecret};

use crate::store::apps::{self as rows, AppRow};
use crate::store::{self, Store, StoreError};
use crate::vault::{Cipher, VaultError, APP_WEBHOOK_SECRET};

/// An app as the rest of the code sees it (no key, no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    pub webhook_url: Option<Url>,
    pub return_origins: Vec<ReturnOrigin>,
    pub created_at: i64,
    pub has_webhook_secret: bool,
}

impl App {
    fn from_row(row: &AppRow) -> Result<App, StoreError> {
        let return_origins = row
            .return_origins
            .iter()
            .map(|o| ReturnOrigin::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("apps.return_origins of {}: {e}", row.id)))?;
        let webhook_url = row
            .webhook_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("apps.webhook_url of {}: {e}", row.id)))?;
        Ok(App {
            id: row.id.clone(),
            name: row.name.clone(),
            webhook_url,
            return_origins,
            created_at: row.created_at,
            has_webhook_secret: row.webhook_secret_ct.is_some(),
        })
    }

    /// Whether `url` is on one of the app's allowed return origins.
    pub fn allows_return_to(&self, url: &Url) -> bool {
        self.return_origins.iter().any(|o| o.matches(url))
    }
}

/// What `apps create` and `POST /admin/api/apps` ask for, already validated.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: AppName,
    pub webhook_url: Option<Url>,
    pub return_origins: Vec<ReturnOrigin>,
}

/// A freshly created app with its credentials — the only time they exist in clear.
#[derive(Debug)]
pub struct CreatedApp {
    pub app: App,
    pub api_key: ApiKey,
    pub webhook_secret: Option<WebhookSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    #[error("an app named `{0}` already exists")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Create an app: a new key (returned once), and with a webhook URL a new
/// signing secret, stored encrypted. Audited as done from the CLI (the
/// admin API calls [`create_by`]).
pub async fn create(store: &Store, cipher: &Cipher, new: NewApp) -> Result<CreatedApp, AppsError> {
    create_by(store, cipher, new, &crate::audit::Actor::cli()).await
}

/// [`create`] on behalf of `actor` (recorded as `app.created`).
pub async fn create_by(
    store: &Store,
    cipher: &Cipher,
    new: NewApp,
    actor: &crate::audit::Actor,
) -> Result<CreatedApp, AppsError> {
    let id = store::new_id();
    let api_key = ApiKey::generate();
    let webhook_secret = new.webhook_url.as_ref().map(|_| WebhookSecret::generate());
    let webhook_secret_ct = match &webhook_secret {
        Some(s) => Some(cipher.encrypt(s.expose().as_bytes(), &APP_WEBHOOK_SECRET.aad(&id))?),
        None => None,
    };
    let row = AppRow {
        id: id.clone(),
        name: new.name.as_str().to_string(),
        api_key_hash: api_key.hash(),
        webhook_url: new.webhook_url.as_ref().map(|u| u.to_string()),
        webhook_secret_ct,
        return_origins: new
            .return_origins
            .iter()
            .map(|o| o.as_str().to_string())
            .collect(),
        created_at: store::now(),
        webhook_secret_old_ct: None,
        webhook_secret_old_until: None,
    };
    let key_id = lifecycle::new_key_id();
    match rows::insert(store.pool(), &row, &key_id, &api_key.prefix()).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(AppsError::NameTaken(new.name.as_str().to_string()))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(app_id = %id, name = %row.name, "app created");
    crate::audit::record_after(
        store,
        crate::audit::kind::APP_CREATED,
        crate::audit::Subject::key(&id, &key_id),
        actor,
        serde_json::json!({ "name": row.name, "webhook": row.webhook_url.is_some() }),
    )
    .await;
    Ok(CreatedApp {
        app: App::from_row(&row)?,
        api_key,
        webhook_secret,
    })
}

pub async fn list(store: &Store) -> Result<Vec<App>, StoreError> {
    rows::list(store.pool())
        .await?
        .iter()
        .map(App::from_row)
        .collect()
}

pub async fn get(store: &Store, id: &str) -> Result<Option<App>, StoreError> {
    rows::by_id(store.pool(), id)
        .await?
        .as_ref()
        .map(App::from_row)
        .transpose()
}

/// The app a key authenticates, with the key's id and when it was last used.
#[derive(Debug, Clone)]
pub struct KeyedApp {
    pub app: App,
    pub key_id: String,
    pub key_last_used_at: Option<i64>,
}

/// The app owning this API key, if any (a revoked key has no row). Only the
/// key's hash is looked up.
pub async fn authenticate(store: &Store, key: &str) -> Result<Option<KeyedApp>, StoreError> {
    let hash = types::hash_key(key);
    let Some(k) = crate::store::app_keys::by_hash(store.pool(), &hash).await? else {
        return Ok(None);
    };
    Ok(Some(KeyedApp {
        app: App::from_row(&k.app)?,
        key_id: k.key_id,
        key_last_used_at: k.key_last_used_at,
    }))
}

/// The secrets every delivery is signed with now: the current one, and the
/// one it replaced while the rotation's overlap lasts (docs/design.md §13).
pub async fn signing_secrets(
    store: &Store,
    cipher: &Cipher,
    app_id: &str,
    now: i64,
) -> Result<Vec<SecretString>, AppsError> {
    let Some(row) = rows::by_id(store.pool(), app_id).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(2);
    if let Some(ct) = &row.webhook_secret_ct {
        out.push(cipher.decrypt_string(ct, &APP_WEBHOOK_SECRET.aad(app_id))?);
    }
    if let (Some(ct), Some(until)) = (&row.webhook_secret_old_ct, row.webhook_secret_old_until) {
        if until > now && !out.is_empty() {
            out.push(cipher.decrypt_string(ct, &crate::vault::APP_WEBHOOK_SECRET_OLD.aad(app_id))?);
        }
    }
    Ok(out)
}

/// The app's webhook signing secret (`whsec_…`), decrypted, for signing events.
pub async fn webhook_secret(
    store: &Store,
    cipher: &Cipher,
    app_id: &str,
) -> Result<Option<SecretString>, AppsError> {
    let Some(row) = rows::by_id(store.pool(), app_id).await? else {
        return Ok(None);
    };
    match row.webhook_secret_ct {
        Some(ct) => Ok(Some(
            cipher.decrypt_string(&ct, &APP_WEBHOOK_SECRET.aad(app_id))?,
        )),
        None => Ok(None),
    }
}
