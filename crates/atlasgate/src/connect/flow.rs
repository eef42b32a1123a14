//! The browser side of connect: `/connect/{session}`, `/oauth/callback` and
//! the site picker. Every answer is an HTML page or a redirect.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use secrecy::SecretString;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{browser_cookie, random_hex, sha256_hex, COOKIE_NAME};
use crate::atlassian::AccessibleSite;
use crate::ids::ConnectionId;
use crate::pages;
use crate::ratelimit::{self, IpRateLimit};
use crate::state::AppState;
use crate::store::connections as conn_rows;
use crate::store::sessions::{self as rows, SessionRow, SessionStatus};
use crate::vault::token::{self, ACCESS_TOKEN, REFRESH_TOKEN};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_connect))
        .routes(routes!(callback))
        .routes(routes!(site_form, choose_site))
        .layer(axum::middleware::from_fn_with_state(
            IpRateLimit::connect(),
            ratelimit::limit,
        ))
}

/// An HTML answer with headers that keep it out of caches, frames and referrers.
fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    harden(&mut resp);
    resp
}

fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'none'"),
    );
}

fn error_html(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, pages::error_page(title, message))
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, v);
            harden(&mut resp);
            resp
        }
        Err(_) => internal_page("redirect target is not a valid header value"),
    }
}

fn internal_page(what: &str) -> Response {
    tracing::error!(error = what, "connect flow failed");
    error_html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "atlasgate could not finish this step. Please try again in a moment.",
    )
}

/// `return_to` plus our parameters (keeping the app's own query).
fn with_query(return_to: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(return_to) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => return_to.to_string(),
    }
}

fn cookie_header(state: &AppState, value: &str) -> Option<HeaderValue> {
    let public = &state.config.public_url;
    let path = format!("{}/", public.path().trim_end_matches('/'));
    let secure = if public.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        super::SESSION_LIFETIME_SECS
    ))
    .ok()
}

fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The CSRF token of the site picker: only a page that can read the
/// HttpOnly cookie (i.e. ours, rendered server-side) knows it.
fn csrf_token(session_id: &str, cookie: &str) -> String {
    sha256_hex(&format!("atlasgate-site-csrf\0{session_id}\0{cookie}"))
}

// ---- GET /connect/{session} ----------------------------------------------------

/// Start consent
///
/// Binds the browser with a cookie and redirects to Atlassian's consent page.
#[utoipa::path(
    get,
    path = "/connect/{session}",
    tag = "connect",
    params(("session" = String, Path, description = "Connect session id")),
    responses(
        (status = 302, description = "Redirect to Atlassian /authorize"),
        (status = 404, description = "Unknown session (HTML page)"),
        (status = 410, description = "Expired or used session (HTML page)"),
        (status = 429, description = "Too many requests from this IP (HTML page)"),
    )
)]
pub async fn start_connect(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = crate::store::now();
    let session = match rows::get(state.store.pool(), &session_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error_html(
                StatusCode::NOT_FOUND,
                "This connect link is not valid",
                "The link may be mistyped or incomplete. Ask the application for a new link.",
            )
        }
        Err(e) => return internal_page(&e.to_string()),
    };
    if session.expires_at <= now {
        return error_html(
            StatusCode::GONE,
            "This connect link has expired",
            "Connect links work for 30 minutes. Ask the application for a new link.",
        );
    }
    // The person went back to the link while choosing a site: resume there.
    let cookie = browser_cookie(&headers);
    if session.status == SessionStatus::AwaitingSite
        && matches!((&cookie, &session.browser_hash), (Some(c), Some(h)) if same_hash(&sha256_hex(c), h))
    {
        return redirect(
            &state
                .config
                .public_link(&format!("/connect/{}/site", session.id)),
        );
    }
    if session.status != SessionStatus::Pending {
        return error_html(
            StatusCode::GONE,
            "This connect link was already used",
            "Each connect link works once. Ask the application for a new link if you need to connect again.",
        );
    }
    let cookie = cookie.unwrap_or_else(random_hex);
    let state_value = random_hex();
    if let Err(e) = rows::insert_state(
        state.store.pool(),
        &sha256_hex(&state_value),
        &session.id,
        &sha256_hex(&cookie),
        now,
        session.expires_at,
    )
    .await
    {
        return internal_page(&e.to_string());
    }
    let location = state.refresher.oauth().authorize_url(
        &session.scope_list(),
        &state.config.redirect_uri(),
        &state_value,
    );
    let (Ok(location), Some(set_cookie)) = (
        HeaderValue::from_str(&location),
        cookie_header(&state, &cookie),
    ) else {
        return internal_page("cannot build the authorize redirect");
    };
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(header::SET_COOKIE, set_cookie);
    harden(&mut resp);
    resp
}

// ---- GET /oauth/callback ----------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by Atlassian when consent failed (`access_denied` = declined).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A failure the person can be sent back to the app with (when it gave a
/// `return_to`), or shown as a page.
fn fail(
    session: &SessionRow,
    code: &str,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    match &session.return_to {
        Some(rt) => redirect(&with_query(rt, &[("status", "error"), ("error", code)])),
        None => error_html(status, title, message),
    }
}

/// OAuth callback
///
/// Atlassian sends the browser here after consent. Exchanges the code, reads
/// `/me` and the accessible resources, stores the connection, then shows the
/// site picker (several sites) or finishes.
#[utoipa::path(
    get,
    path = "/oauth/callback",
    tag = "connect",
    params(CallbackParams),
    responses(
        (status = 303, description = "To the site picker, or to return_to"),
        (status = 200, description = "Connected page (no return_to)"),
        (status = 400, description = "Missing, unknown or reused state (HTML page)"),
        (status = 403, description = "Started in another browser, or declined (HTML page)"),
        (status = 410, description = "Expired (HTML page)"),
        (status = 429, description = "Too many requests from this address (HTML page, `Retry-After`)"),
        (status = 502, description = "Atlassian failed (HTML page)"),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Query(params): Query<CallbackParams>,
    headers: HeaderMap,
) -> Response {
    let now = crate::store::now();
    let Some(state_value) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return error_html(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "The answer from Atlassian is missing its state. Start again from the application.",
        );
    };
    let state_hash = sha256_hex(state_value);
    let unknown = || {
        error_html(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "This sign-in attempt is unknown to atlasgate. Start again from the application.",
        )
    };
    let st = match rows::get_state(state.store.pool(), &state_hash).await {
        Ok(Some(st)) => st,
        Ok(None) => return unknown(),
        Err(e) => return internal_page(&e.to_string()),
    };
    let session = match rows::get(state.store.pool(), &st.session_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return unknown(),
        Err(e) => return internal_page(&e.to_string()),
    };
    let cookie = browser_cookie(&headers);
    let same_browser = cookie
        .as_deref()
        .is_some_and(|c| same_hash(&sha256_hex(c), &st.browser_hash));
    let Some(cookie) = cookie.filter(|_| same_browser) else {
        return error_html(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser",
            "For your safety, finish connecting in the same browser where you opened the connect link.",
        );
    };
    if st.used_at.is_some() || session.status != SessionStatus::Pending {
        return error_html(
            StatusCode::BAD_REQUEST,
            "This sign-in was already completed",
            "Each sign-in can be used once. If you need to connect again, ask the application for a new link.",
        );
    }
    if now >= st.expires_at || now >= session.expires_at {
        return fail(
            &session,
            "expired",
            StatusCode::GONE,
            "This connect link has expired",
            "Connect links work for 30 minutes. Ask the application for a new link.",
        );
    }
    if let Some(error) = params.error.as_deref() {
        tracing::info!(
            error,
            description = params.error_description.as_deref().unwrap_or(""),
            "consent not given"
        );
        return if error == "access_denied" {
            fail(
                &session,
                "access_denied",
                StatusCode::FORBIDDEN,
                "You declined",
                "You did not give access to your Atlassian account, so nothing was connected.",
            )
        } else {
            fail(
                &session,
                "authorization_failed",
                StatusCode::BAD_REQUEST,
                "Atlassian did not authorize the connection",
                "Atlassian reported a problem with the request. Try again, or contact the application's support.",
            )
        };
    }
    let Some(code) = params
        .code
        .filter(|c| !c.is_empty())
        .map(SecretString::from)
    else {
        return error_html(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "The answer from Atlassian has no authorization code. Start again from the application.",
        );
    };
    let exchange_failed = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(step = what, error = %e, "connect: Atlassian call failed");
        fail(
            &session,
            "exchange_failed",
            StatusCode::BAD_GATEWAY,
            "Atlassian could not complete the connection",
            "atlasgate could not finish the sign-in with Atlassian. Please try again.",
        )
    };
    let oauth = state.refresher.oauth();
    let tokens = match oauth
        .exchange_code(&code, &state.config.redirect_uri())
        .await
    {
        Ok(t) => t,
        Err(e) => return exchange_failed("code exchange", &e),
    };
    let account = match oauth.me(&tokens.access_token).await {
        Ok(a) => a,
        Err(e) => return exchange_failed("/me", &e),
    };
    let sites = match oauth.accessible_sites(&tokens.access_token).await {
        Ok(s) => s,
        Err(e) => return exchange_failed("accessible-resources", &e),
    };
    if sites.is_empty() {
        return fail(
            &session,
            "no_sites",
            StatusCode::FORBIDDEN,
            "No site was shared",
            "Your consent did not include any Atlassian site, so there is nothing to connect.",
        );
    }
    match store_grant(&state, &session, &state_hash, &cookie, tokens, account, sites, now).await {
        Ok(StoreOutcome::Finished { connection_id, site }) => finish(&session, &connection_id, Some(&site)),
        Ok(StoreOutcome::ChooseSite) => redirect(&state.config.public_link(&format!("/connect/{}/site", session.id))),
        Ok(StoreOutcome::AlreadyUsed) => error_html(
            StatusCode::BAD_REQUEST,
            "This sign-in was already completed",
            "Each sign-in can be used once. If you need to connect again, ask the application for a new link.",
        ),
        Err(e) => internal_page(&format!("{e:#}")),
    }
}

enum StoreOutcome {
    Finished {
        connection_id: ConnectionId,
        site: AccessibleSite,
    },
    ChooseSite,
    AlreadyUsed,
}

/// One transaction: consume the state, store (or replace) the grant, and —
/// with a single site — finish the session and emit `connection.created`.
#[allow(clippy::too_many_arguments)]
async fn store_grant(
    state: &AppState,
    session: &SessionRow,
    state_hash: &str,
    cookie: &str,
    tokens: crate::atlassian::TokenResponse,
    account: crate::atlassian::AtlassianAccount,
    sites: Vec<AccessibleSite>,
    now: i64,
) -> anyhow::Result<StoreOutcome> {
    let mut tx = state.store.begin_write().await?;
    if !rows::use_state(&mut tx, state_hash, now).await? {
        tx.rollback().await?;
        return Ok(StoreOutcome::AlreadyUsed);
    }
    match rows::get(&mut *tx, &session.id).await? {
        Some(s) if s.status == SessionStatus::Pending => {}
        _ => {
            tx.rollback().await?;
            return Ok(StoreOutcome::AlreadyUsed);
        }
    }
    let existing =
        conn_rows::find_by_owner(&mut tx, &session.app_id, &session.owner, &session.profile)
            .await?;
    let id = existing
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_else(conn_rows::new_id);
    let access_ct = token::seal(&state.cipher, &id, ACCESS_TOKEN, &tokens.access_token)?;
    let refresh_ct = match &tokens.refresh_token {
        Some(rt) => Some(token::seal(&state.cipher, &id, REFRESH_TOKEN, rt)?),
        None => None,
    };
    let granted: Vec<String> = if tokens.scope.trim().is_empty() {
        session.scope_list()
    } else {
        tokens
            .scope
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let single = (sites.len() == 1).then(|| sites[0].clone());
    // A reconnect keeps its site while the person picks again (if the new
    // grant still covers it); a new connection has none until chosen.
    let kept = existing
        .as_ref()
        .and_then(|c| c.site_cloud_id.clone())
        .and_then(|id| sites.iter().find(|s| s.cloud_id == id).cloned());
    let site = single.clone().or(kept);
    let grant = conn_rows::NewGrant {
        account_id: &account.account_id,
        account_email: account.email.as_deref(),
        account_name: account.name.as_deref(),
        scopes: &granted,
        sites: &sites,
        site_cloud_id: site.as_ref().map(|s| &s.cloud_id),
        site_url: site.as_ref().map(|s| s.url.as_str()),
        access_token: &access_ct,
        refresh_token: refresh_ct.as_deref(),
        access_expires_at: now + tokens.expires_in.max(0),
    };
    match &existing {
        Some(_) => conn_rows::replace_grant(&mut tx, &id, &grant, now).await?,
        None => {
            conn_rows::insert(
                &mut tx,
                &id,
                &session.app_id,
                &session.owner,
                &session.profile,
                &grant,
                now,
            )
            .await?
        }
    }
    let browser_hash = sha256_hex(cookie);
    let outcome = match single {
        Some(site) => {
            rows::attach_connection(
                &mut tx,
                &session.id,
                &id,
                &browser_hash,
                SessionStatus::Completed,
                now,
            )
            .await?;
            crate::connections::emit_created(&mut tx, &id, now).await?;
            StoreOutcome::Finished {
                connection_id: id.clone(),
                site,
            }
        }
        None => {
            rows::attach_connection(
                &mut tx,
                &session.id,
                &id,
                &browser_hash,
                SessionStatus::AwaitingSite,
                now,
            )
            .await?;
            StoreOutcome::ChooseSite
        }
    };
    tx.commit().await?;
    if existing.is_some() {
        // A reconnect replaced the grant (tokens, sites): `/token` must not
        // keep serving the old one.
        state.refresher.token_cache().invalidate(&id);
    }
    tracing::info!(connection_id = %id, reconnect = existing.is_some(), sites = sites.len(), "grant stored");
    Ok(outcome)
}

fn finish(session: &SessionRow, connection_id: &str, site: Option<&AccessibleSite>) -> Response {
    match &session.return_to {
        Some(rt) => redirect(&with_query(
            rt,
            &[("status", "connected"), ("connection_id", connection_id)],
        )),
        None => html(StatusCode::OK, pages::connected_page(site)),
    }
}

// ---- the site picker ------------------------------------------------------------------

/// The session awaiting a site choice from this browser, with its connection's sites.
async fn picker_context(
    state: &AppState,
    session_id: &str,
    headers: &HeaderMap,
) -> Result<(SessionRow, ConnectionId, Vec<AccessibleSite>, String), Response> {
    let now = crate::store::now();
    let session = match rows::get(state.store.pool(), session_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(error_html(
                StatusCode::NOT_FOUND,
                "This connect link is not valid",
                "The link may be mistyped or incomplete. Ask the application for a new link.",
            ))
        }
        Err(e) => return Err(internal_page(&e.to_string())),
    };
    let cookie = browser_cookie(headers);
    let same_browser = match (&cookie, &session.browser_hash) {
        (Some(c), Some(h)) => same_hash(&sha256_hex(c), h),
        _ => false,
    };
    let Some(cookie) = cookie.filter(|_| same_browser) else {
        return Err(error_html(
            StatusCode::FORBIDDEN,
            "This page belongs to another browser",
            "For your safety, finish connecting in the same browser where you opened the connect link.",
        ));
    };
    if session.status == SessionStatus::Completed {
        return Err(error_html(
            StatusCode::GONE,
            "A site was already chosen",
            "This connection is complete. You can close this window.",
        ));
    }
    if session.status != SessionStatus::AwaitingSite {
        return Err(error_html(
            StatusCode::BAD_REQUEST,
            "Nothing to choose yet",
            "Start from the connect link the application gave you.",
        ));
    }
    if now >= session.expires_at {
        return Err(error_html(
            StatusCode::GONE,
            "This connect link has expired",
            "Connect links work for 30 minutes. Ask the application for a new link.",
        ));
    }
    let Some(connection_id) = session.connection_id.clone() else {
        return Err(internal_page("session awaiting a site has no connection"));
    };
    let row = match conn_rows::get(state.store.pool(), &connection_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(internal_page("connection of a session vanished")),
        Err(e) => return Err(internal_page(&e.to_string())),
    };
    Ok((session, connection_id, row.site_list(), cookie))
}

/// Site picker
///
/// Lists the grant's sites (name, URL, avatar, products) for the person to choose.
#[utoipa::path(
    get,
    path = "/connect/{session}/site",
    tag = "connect",
    params(("session" = String, Path, description = "Connect session id")),
    responses(
        (status = 200, description = "HTML site picker"),
        (status = 403, description = "Another browser (HTML page)"),
        (status = 404, description = "Unknown session (HTML page)"),
        (status = 410, description = "Expired or already chosen (HTML page)"),
        (status = 429, description = "Too many requests from this address (HTML page, `Retry-After`)"),
    )
)]
pub async fn site_form(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (session, _, sites, cookie) = match picker_context(&state, &session_id, &headers).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let action = state
        .config
        .public_link(&format!("/connect/{}/site", session.id));
    html(
        StatusCode::OK,
        pages::site_picker(&action, &csrf_token(&session.id, &cookie), &sites, None),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SiteChoice {
    pub cloud_id: Option<String>,
    pub csrf: Option<String>,
}

/// Choose a site
///
/// Accepts the picker's form; the cloud id must be one of the grant's sites.
#[utoipa::path(
    post,
    path = "/connect/{session}/site",
    tag = "connect",
    params(("session" = String, Path, description = "Connect session id")),
    request_body(content = SiteChoice, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To return_to"),
        (status = 200, description = "Connected page (no return_to)"),
        (status = 400, description = "A form that does not parse", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Bad CSRF token or another browser (HTML page)"),
        (status = 404, description = "Unknown session (HTML page)"),
        (status = 410, description = "Expired or already chosen (HTML page)"),
        (status = 413, description = "The body is larger than the limit", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/x-www-form-urlencoded`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not one of the grant's sites (HTML picker again)"),
        (status = 429, description = "Too many requests from this address (HTML page, `Retry-After`)"),
    )
)]
pub async fn choose_site(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    Form(choice): Form<SiteChoice>,
) -> Response {
    let (session, connection_id, sites, cookie) =
        match picker_context(&state, &session_id, &headers).await {
            Ok(c) => c,
            Err(resp) => return resp,
        };
    let expected = csrf_token(&session.id, &cookie);
    if !choice
        .csrf
        .as_deref()
        .is_some_and(|c| same_hash(c, &expected))
    {
        return error_html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the site list and choose again.",
        );
    }
    let action = state
        .config
        .public_link(&format!("/connect/{}/site", session.id));
    let Some(site) = choice
        .cloud_id
        .as_deref()
        .and_then(|id| sites.iter().find(|s| s.cloud_id == id))
        .cloned()
    else {
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::site_picker(
                &action,
                &expected,
                &sites,
                Some("Choose one of the listed sites."),
            ),
        );
    };
    let now = crate::store::now();
    let result: anyhow::Result<bool> = async {
        let mut tx = state.store.begin_write().await?;
        if !rows::complete(&mut tx, &session.id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        conn_rows::set_site(&mut *tx, &connection_id, &site.cloud_id, &site.url, now).await?;
        crate::connections::emit_created(&mut tx, &connection_id, now).await?;
        tx.commit().await?;
        state.refresher.token_cache().invalidate(&connection_id);
        Ok(true)
    }
    .await;
    match result {
        Ok(true) => {
            tracing::info!(connection_id = %connection_id, "site chosen");
            finish(&session, &connection_id, Some(&site))
        }
        Ok(false) => error_html(
            StatusCode::GONE,
            "A site was already chosen",
            "This connection is complete. You can close this window.",
        ),
        Err(e) => internal_page(&format!("{e:#}")),
    }
}
