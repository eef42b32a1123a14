//! Bringing an existing Atlassian grant into atlasgate (docs/design.md §18,
//! docs/importing.md): `POST /v1/connections/import` and
//! `atlasgate connections import` both end here.
//!
//! One import:
//!
//! 1. checks the input (owner, profile, tokens, `expires_at`, `cloud_id`);
//! 2. gets a working access token: the given one while it has more than
//!    `refresh_margin` left, else one refresh of the given refresh token
//!    through [`Refresher::exchange_unstored`](crate::vault::refresh::Refresher::exchange_unstored)
//!    (same client, retries with the same old token, metrics). A refused
//!    refresh token answers [`Error::Invalid`] on `refresh_token` and stores
//!    nothing;
//! 3. asks Atlassian who it is (`/me`) and which sites it covers
//!    (accessible-resources), and picks the site: `cloud_id` (one of them) or
//!    the only one; several and none named answers [`Error::SiteRequired`];
//! 4. stores the grant in one write transaction, keyed by (app, owner,
//!    profile): a new row, or the existing row's grant replaced (same id),
//!    and `connection.created` in the outbox either way (as a reconnect
//!    does).
//!
//! Re-running an import is safe: the SHA-256 of the refresh token each row
//! was imported with is kept (`connections.imported_token_sha256`), and the
//! same token for the same active connection answers
//! [`ImportOutcome::Unchanged`] without calling Atlassian. Calling Atlassian
//! again would present a token that the first import already rotated; after
//! the 10-minute reuse window that revokes the whole family
//! (docs/atlassian-behaviour.md §1), i.e. kills the imported connection.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::atlassian::{AccessibleSite, AtlassianAccount, OAuthError};
use crate::connections::ConnectionView;
use crate::error::{Error, Result};
use crate::ids::Owner;
use crate::state::Core;
use crate::store::connections::{self as rows, ConnectionRow, ConnectionStatus};
use crate::vault::token::{self, ACCESS_TOKEN, REFRESH_TOKEN};

pub mod bulk;

/// The longest owner, as for connect sessions.
const OWNER_MAX_CHARS: usize = 200;
/// Tokens are opaque, but not unbounded (a real one is about 1–4 KB).
const TOKEN_MAX_BYTES: usize = 16 * 1024;
/// Retries of `/me` and accessible-resources on a lost answer or a 5xx.
const IDENTITY_ATTEMPTS: u32 = 3;

/// One import as an app sends it (the body of `POST /v1/connections/import`,
/// one line of the bulk command's file). Tokens are secrets from the moment
/// they are parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportInput {
    pub owner: Owner,
    #[serde(default)]
    pub profile: Option<String>,
    pub refresh_token: SecretString,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// When `access_token` expires (RFC 3339). Without it the access token
    /// is not trusted and the refresh token is exchanged instead.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub cloud_id: Option<String>,
}

impl std::fmt::Debug for ImportInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportInput")
            .field("owner", &self.owner)
            .field("profile", &self.profile)
            .field("expires_at", &self.expires_at)
            .field("cloud_id", &self.cloud_id)
            .finish_non_exhaustive()
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A new connection.
    Created,
    /// The (app, owner, profile) existed; its grant was replaced, same id.
    Replaced,
    /// The same refresh token was imported into this active connection
    /// before: nothing was called or changed.
    Unchanged,
}

impl ImportOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportOutcome::Created => "imported",
            ImportOutcome::Replaced => "replaced",
            ImportOutcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug)]
pub struct Imported {
    pub outcome: ImportOutcome,
    pub connection: ConnectionView,
}

/// The input, checked, and not imported before: what
/// [`finish`] takes to Atlassian.
pub struct Checked {
    owner: Owner,
    profile: String,
    refresh_token: SecretString,
    /// The given access token, when it is still good for `refresh_margin`.
    access: Option<(SecretString, i64)>,
    cloud_id: Option<String>,
    token_hash: String,
}

/// A working token pair and what Atlassian says about it.
struct Grant {
    access_token: SecretString,
    refresh_token: SecretString,
    access_expires_at: i64,
    /// As granted (the refresh answer's `scope`); `None` when the given
    /// access token was used, and the profile's scopes are recorded.
    scopes: Option<Vec<String>>,
    account: AtlassianAccount,
    sites: Vec<AccessibleSite>,
    site: AccessibleSite,
}

impl Checked {
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn profile(&self) -> &str {
        &self.profile
    }
}

/// What [`prepare`] found.
pub enum Prepared {
    /// Already imported with this refresh token: nothing to do.
    Done(Box<Imported>),
    /// To be validated with Atlassian and stored ([`finish`]).
    Pending(Checked),
}

/// Import one grant for `app_id`. Every failure leaves the database as it was.
pub async fn import(core: &Core, app_id: &str, input: ImportInput) -> Result<Imported> {
    match prepare(core, app_id, input).await? {
        Prepared::Done(done) => Ok(*done),
        Prepared::Pending(checked) => finish(core, app_id, &checked).await,
    }
}

/// Check the input and look for an earlier import of the same token; no
/// call to Atlassian (the bulk command paces only what needs one).
pub async fn prepare(core: &Core, app_id: &str, input: ImportInput) -> Result<Prepared> {
    let checked = check(core, input)?;
    match already_imported(core, app_id, &checked).await? {
        Some(done) => Ok(Prepared::Done(Box::new(done))),
        None => Ok(Prepared::Pending(checked)),
    }
}

/// Validate with Atlassian (one refresh at most) and store.
pub async fn finish(core: &Core, app_id: &str, checked: &Checked) -> Result<Imported> {
    let grant = validate_with_atlassian(core, checked).await?;
    store(core, app_id, checked, grant).await
}

fn check(core: &Core, input: ImportInput) -> Result<Checked> {
    let owner_chars = input.owner.chars().count();
    if owner_chars == 0 || owner_chars > OWNER_MAX_CHARS {
        return Err(Error::invalid("owner", "must be 1–200 characters"));
    }
    if input.owner.chars().any(char::is_control) {
        return Err(Error::invalid(
            "owner",
            "must not contain control characters",
        ));
    }
    let profile = input.profile.unwrap_or_else(|| "jira".to_string());
    if !core.config.profiles.contains_key(&profile) {
        let known: Vec<&str> = core.config.profiles.keys().map(String::as_str).collect();
        return Err(Error::invalid(
            "profile",
            format!("unknown profile; configured: {}", known.join(", ")),
        ));
    }
    check_token("refresh_token", &input.refresh_token)?;
    if let Some(at) = &input.access_token {
        check_token("access_token", at)?;
    }
    let expires_at = match &input.expires_at {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    Error::invalid(
                        "expires_at",
                        "must be an RFC 3339 timestamp (2026-12-01T10:00:00Z)",
                    )
                })?
                .timestamp(),
        ),
    };
    if expires_at.is_some() && input.access_token.is_none() {
        return Err(Error::invalid(
            "expires_at",
            "is the expiry of access_token, which is missing",
        ));
    }
    if let Some(id) = &input.cloud_id {
        if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(Error::invalid(
                "cloud_id",
                "must be a cloud id from accessible-resources",
            ));
        }
    }
    let usable_until = crate::store::now() + core.config.refresh_margin.as_secs() as i64;
    let access = match (input.access_token, expires_at) {
        (Some(token), Some(at)) if at > usable_until => Some((token, at)),
        _ => None,
    };
    let token_hash = crate::connect::sha256_hex(input.refresh_token.expose_secret());
    Ok(Checked {
        owner: input.owner,
        profile,
        refresh_token: input.refresh_token,
        access,
        cloud_id: input.cloud_id,
        token_hash,
    })
}

fn check_token(field: &str, token: &SecretString) -> Result<()> {
    let t = token.expose_secret();
    if t.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if t.len() > TOKEN_MAX_BYTES {
        return Err(Error::invalid(field, "is longer than 16 KiB"));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // Never quote the value: it is a secret even when malformed.
        return Err(Error::invalid(
            field,
            "must be the token exactly as Atlassian issued it (no spaces or line breaks)",
        ));
    }
    Ok(())
}

/// The same refresh token already imported into this (app, owner, profile),
/// still active: answer it as it is.
async fn already_imported(
    core: &Core,
    app_id: &str,
    checked: &Checked,
) -> Result<Option<Imported>> {
    let Some(row) =
        rows::find_imported(core.store.pool(), app_id, &checked.owner, &checked.profile).await?
    else {
        return Ok(None);
    };
    let (row, hash) = row;
    let same_site = checked
        .cloud_id
        .as_deref()
        .is_none_or(|id| row.site_cloud_id.as_deref() == Some(id));
    if row.status() == ConnectionStatus::Active
        && hash.as_deref() == Some(checked.token_hash.as_str())
        && same_site
    {
        return Ok(Some(Imported {
            outcome: ImportOutcome::Unchanged,
            connection: ConnectionView::from_row(&row),
        }));
    }
    Ok(None)
}

async fn validate_with_atlassian(core: &Core, checked: &Checked) -> Result<Grant> {
    let oauth = core.refresher.oauth();
    let now = crate::store::now();
    // The given access token first, if it is fresh; if Atlassian refuses it
    // (revoked with its companion refresh token, or simply wrong), fall back
    // to the refresh token, which decides.
    let mut given = None;
    if let Some((access, expires_at)) = &checked.access {
        match retry(|| oauth.me(access)).await {
            Ok(account) => given = Some((access.clone(), *expires_at, account)),
            Err(OAuthError::Rejected { status: 401, .. }) => {}
            Err(e) => return Err(identity_error(e)),
        }
    }
    let (access_token, refresh_token, access_expires_at, scopes, account) = match given {
        Some((access, expires_at, account)) => (
            access,
            checked.refresh_token.clone(),
            expires_at,
            None,
            account,
        ),
        None => {
            let answer = core
                .refresher
                .exchange_unstored(&checked.refresh_token)
                .await
                .map_err(refresh_error)?;
            let account = retry(|| oauth.me(&answer.access_token))
                .await
                .map_err(identity_error)?;
            let scopes: Option<Vec<String>> = (!answer.scope.trim().is_empty()).then(|| {
                answer
                    .scope
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            });
            (
                answer.access_token,
                // Atlassian sometimes omits the rotated token: the old one stays current.
                answer
                    .refresh_token
                    .unwrap_or_else(|| checked.refresh_token.clone()),
                now + answer.expires_in.max(0),
                scopes,
                account,
            )
        }
    };
    let sites = retry(|| oauth.accessible_sites(&access_token))
        .await
        .map_err(identity_error)?;
    let site = choose_site(&sites, checked.cloud_id.as_deref())?;
    Ok(Grant {
        access_token,
        refresh_token,
        access_expires_at,
        scopes,
        account,
        sites,
        site,
    })
}

fn choose_site(sites: &[AccessibleSite], cloud_id: Option<&str>) -> Result<AccessibleSite> {
    if sites.is_empty() {
        return Err(Error::invalid(
            "refresh_token",
            "the grant covers no Atlassian site; the person must connect again",
        ));
    }
    match cloud_id {
        Some(id) => sites
            .iter()
            .find(|s| s.cloud_id == id)
            .cloned()
            .ok_or_else(|| {
                let ids: Vec<&str> = sites.iter().map(|s| s.cloud_id.as_str()).collect();
                Error::invalid(
                    "cloud_id",
                    format!("is not one of the grant's sites: {}", ids.join(", ")),
                )
            }),
        None if sites.len() == 1 => Ok(sites[0].clone()),
        None => Err(Error::SiteRequired {
            sites: sites.to_vec(),
        }),
    }
}

/// Retry a read-only identity call on a lost answer or a 5xx.
async fn retry<T, F, Fut>(mut call: F) -> std::result::Result<T, OAuthError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, OAuthError>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if e.is_transient() && attempt < IDENTITY_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            other => return other,
        }
    }
}

fn refresh_error(e: OAuthError) -> Error {
    match e {
        OAuthError::GrantRevoked { error } => Error::invalid(
            "refresh_token",
            format!(
                "Atlassian refused this refresh token ({error}): it was revoked, expired, or \
                 already rotated by its old store; the person must connect again"
            ),
        ),
        OAuthError::Rejected { status, .. } => Error::RefreshRejected { status },
        OAuthError::Unavailable { .. } | OAuthError::Lost(_) | OAuthError::Decode(_) => {
            Error::RefreshUnavailable {
                retry_after_secs: 5,
            }
        }
    }
}

fn identity_error(e: OAuthError) -> Error {
    match e {
        OAuthError::GrantRevoked { error } => Error::invalid(
            "refresh_token",
            format!("Atlassian refused the grant ({error}); the person must connect again"),
        ),
        OAuthError::Rejected { status: 401, .. } | OAuthError::Rejected { status: 403, .. } => {
            Error::invalid(
                "refresh_token",
                "the grant lacks read:me, which atlasgate needs; the person must connect again",
            )
        }
        OAuthError::Rejected { status, .. } => {
            Error::Unreachable(format!("Atlassian answered {status} to an identity call"))
        }
        OAuthError::Unavailable { status } => {
            Error::Unreachable(format!("Atlassian answered {status}"))
        }
        OAuthError::Lost(why) => Error::Unreachable(why),
        OAuthError::Decode(why) => Error::Decode(why),
    }
}

async fn store(core: &Core, app_id: &str, checked: &Checked, grant: Grant) -> Result<Imported> {
    let scopes = match &grant.scopes {
        Some(s) => s.clone(),
        None => core
            .config
            .profiles
            .get(&checked.profile)
            .map(|p| p.scopes.clone())
            .unwrap_or_default(),
    };
    // Two imports of the same (app, owner, profile) at once on PostgreSQL:
    // the loser's INSERT hits the unique key; its second attempt replaces.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store_once(core, app_id, checked, &grant, &scopes).await {
            Err(Error::Internal(e)) if attempt == 1 && is_unique_violation(&e) => continue,
            other => return other,
        }
    }
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(crate::store::is_unique_violation)
            || cause
                .downcast_ref::<crate::store::StoreError>()
                .is_some_and(crate::store::StoreError::is_unique_violation)
    })
}

async fn store_once(
    core: &Core,
    app_id: &str,
    checked: &Checked,
    grant: &Grant,
    scopes: &[String],
) -> Result<Imported> {
    let now = crate::store::now();
    let mut tx = core.store.begin_write().await?;
    let existing: Option<ConnectionRow> =
        rows::find_by_owner(&mut tx, app_id, &checked.owner, &checked.profile).await?;
    let id = existing
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_else(rows::new_id);
    let access_ct = token::seal(&core.cipher, &id, ACCESS_TOKEN, &grant.access_token)?;
    let refresh_ct = token::seal(&core.cipher, &id, REFRESH_TOKEN, &grant.refresh_token)?;
    let new = rows::NewGrant {
        account_id: &grant.account.account_id,
        account_email: grant.account.email.as_deref(),
        account_name: grant.account.name.as_deref(),
        scopes,
        sites: &grant.sites,
        site_cloud_id: Some(&grant.site.cloud_id),
        site_url: Some(&grant.site.url),
        access_token: &access_ct,
        refresh_token: Some(&refresh_ct),
        access_expires_at: grant.access_expires_at,
    };
    let outcome = match &existing {
        Some(_) => {
            rows::replace_grant(&mut tx, &id, &new, now).await?;
            ImportOutcome::Replaced
        }
        None => {
            rows::insert(
                &mut tx,
                &id,
                app_id,
                &checked.owner,
                &checked.profile,
                &new,
                now,
            )
            .await?;
            ImportOutcome::Created
        }
    };
    rows::set_imported_token_hash(&mut tx, &id, &checked.token_hash).await?;
    crate::connections::emit_created(&mut tx, &id, now).await?;
    let row = rows::get(&mut *tx, &id).await?.ok_or(Error::NotFound)?;
    tx.commit().await.map_err(Error::from)?;
    if outcome == ImportOutcome::Replaced {
        // `/token` must not keep serving the replaced grant's token.
        core.refresher.token_cache().invalidate(&id);
    }
    tracing::info!(connection_id = %id, outcome = outcome.as_str(), sites = grant.sites.len(), "connection imported");
    Ok(Imported {
        outcome,
        connection: ConnectionView::from_row(&row),
    })
}
