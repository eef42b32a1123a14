//! The connect flow (docs/design.md §2–3): an app creates a one-use connect session;
//! a person follows its link through Atlassian's consent, back to
//! `/oauth/callback`, through the site picker when the grant covers several
//! sites, and finally back to the app's `return_to`.
//!
//! Security model:
//! - the session id is an unguessable capability, valid 30 minutes, used once;
//! - `GET /connect/{session}` binds the browser with a random HttpOnly,
//!   SameSite=Lax cookie and hands Atlassian a fresh random `state`; only the
//!   SHA-256 of each is stored;
//! - the callback accepts a state only once, only before it expires, and only
//!   from the browser that holds the matching cookie; every rejection leaves
//!   the database unchanged;
//! - the site picker's form carries a CSRF token derived from the cookie;
//! - `/connect/*` and `/oauth/callback` are rate limited per client IP.
//!
//! Error redirects: when the session is known, the browser is the one that
//! started it and the session has a `return_to`, these errors send the person
//! back to `return_to?status=error&error=CODE`: `access_denied` (the person
//! declined), `authorization_failed` (another `error=` from Atlassian),
//! `expired` (session or state expired), `exchange_failed` (code exchange,
//! `/me` or accessible-resources failed), `no_sites` (the grant covers no
//! site). Unknown, missing or reused states and a foreign browser always get
//! an HTML page, never a redirect.

mod flow;

mod sessions;

use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub use sessions::{create_session, ConnectSessionRequest, ConnectSessionResponse};

pub use atlasgate_core::connect::{
    random_hex, sha256_hex, NewConnectSession, SESSION_LIFETIME_SECS,
};

/// The browser-binding cookie.
pub const COOKIE_NAME: &str = "atlasgate_connect";

/// `POST /v1/connect-sessions` (app API) and the pages a person's browser
/// visits (`/connect/…`, `/oauth/callback`; rate limited per IP).
pub fn api_router() -> OpenApiRouter<AppState> {
    sessions::router().merge(flow::router())
}

/// The browser-binding cookie's value, if the request carries a well-formed one.
pub(crate) fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
}
