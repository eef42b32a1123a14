//! `AppConnection`: the one way a `/v1/connections/{id}/…` handler gets its
//! connection — app key auth, the path's `{id}`, and a load scoped to the
//! calling app. Another app's connection answers 404 exactly like a missing
//! one, so isolation is a property of the type (and `tests/api/isolation.rs`
//! walks `/openapi.json` to prove it for every route).

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AuthenticatedApp;
use crate::error::ApiError;
use crate::ids::ConnectionId;
use crate::state::AppState;
use crate::store::connections::{self as rows, ConnectionRow};
use crate::vault::refresh::FreshToken;
use crate::vault::token_cache::Ticket;

/// Read the row from the database (every route but `/token`).
#[derive(Debug)]
pub struct Stored;

/// Serve from the process's token cache when it holds this app's connection
/// (`/token`'s hot path: no database read; see `vault::token_cache` for why
/// a second of staleness across processes is safe), else read the row.
#[derive(Debug)]
pub struct CachedToken;

/// How an [`AppConnection`] is loaded.
pub trait Load {
    const USE_TOKEN_CACHE: bool;
}

impl Load for Stored {
    const USE_TOKEN_CACHE: bool = false;
}

impl Load for CachedToken {
    const USE_TOKEN_CACHE: bool = true;
}

/// The calling app and its connection named by the path's `{id}`.
#[derive(Debug)]
pub struct AppConnection<L: Load = Stored> {
    pub app: AuthenticatedApp,
    /// Shared with the token cache on a hit (no copy of the row).
    pub row: Arc<ConnectionRow>,
    /// With [`CachedToken`]: the cached token, when the cache answered.
    pub cached: Option<FreshToken>,
    /// With [`CachedToken`] and a cache miss: taken before the row was read,
    /// so a disconnect committing meanwhile voids a later cache fill.
    pub ticket: Option<Ticket>,
    mode: PhantomData<L>,
}

impl<L: Load> AppConnection<L> {
    /// The connection, which must have a selected site (409 otherwise).
    pub fn with_site(&self) -> Result<&ConnectionRow, ApiError> {
        if self.row.site_cloud_id.is_none() || self.row.site_url.is_none() {
            return Err(atlasgate_core::Error::NoSite.into());
        }
        Ok(&self.row)
    }
}

impl<L: Load + Send + Sync> FromRequestParts<AppState> for AppConnection<L> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let app = AuthenticatedApp::from_request_parts(parts, state).await?;
        let id = ConnectionId::from(connection_id(parts).ok_or(ApiError::NotFound)?);
        let id = &id;
        let mut ticket = None;
        if L::USE_TOKEN_CACHE {
            let cache = state.refresher.token_cache();
            // Another app's connection is not served from here: it falls
            // through to the scoped read, which answers 404.
            if let Some(fresh) = cache.get(id).filter(|f| f.connection.app_id == app.id) {
                return Ok(AppConnection {
                    app,
                    row: fresh.connection.clone(),
                    cached: Some(fresh),
                    ticket: None,
                    mode: PhantomData,
                });
            }
            ticket = Some(cache.ticket());
        }
        let row = rows::get_for_app(state.store.pool(), &app.id, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(AppConnection {
            app,
            row: Arc::new(row),
            cached: None,
            ticket,
            mode: PhantomData,
        })
    }
}

/// The `{id}` of `/v1/connections/{id}/…`, read from the URI itself rather
/// than from axum's decoded path parameters: those reject the whole request
/// when another parameter (a proxied `{*path}`) does not decode to UTF-8,
/// and such a path must reach the proxy's own check (a 400), not answer 404.
/// Ids are plain ASCII, so the raw segment is the id.
fn connection_id(parts: &Parts) -> Option<String> {
    let rest = parts.uri.path().strip_prefix("/v1/connections/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}
