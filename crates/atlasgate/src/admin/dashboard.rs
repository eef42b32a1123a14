//! `/admin`: a login form, then a server-rendered dashboard (apps,
//! connections with their health, syncs with their progress, recent event
//! deliveries), and logout.
//! No JavaScript, no CDN; the CSS is inline.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::api::rfc3339;
use super::session::{self, COOKIE_NAME, SESSION_SECS};
use crate::apps;
use crate::audit::Actor;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::connections::ConnectionStatus;
use crate::store::events::DeliveryState;
use crate::store::syncs::SyncState;
use crate::store::{self, events};
use crate::sync::store as sync_rows;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(show))
        // Failed logins are rate limited per client address by
        // `ratelimit::admin`, together with the admin API's.
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        // Changes, each behind the session's CSRF token.
        .route("/admin/apps/{app}/keys/{key}/revoke", post(revoke_key))
        .route("/admin/apps/{app}/keys", post(create_key))
        .route("/admin/apps/{app}/webhook-secret", post(rotate_secret))
        .route("/admin/apps/{app}/delete", post(delete_app))
}

/// `/admin` under the public URL's path prefix (a reverse proxy may mount us).
fn admin_path(state: &AppState, rest: &str) -> String {
    format!(
        "{}/admin{rest}",
        state.config.public_url.path().trim_end_matches('/')
    )
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

fn logged_in(state: &AppState, headers: &HeaderMap) -> bool {
    valid_session(state, headers).is_some()
}

/// The session cookie's value, when it is a valid session.
fn valid_session(state: &AppState, headers: &HeaderMap) -> Option<String> {
    match (&state.config.admin_token, session_cookie(headers)) {
        (Some(token), Some(value)) if session::verify(token, &value, store::now()) => Some(value),
        _ => None,
    }
}

fn cookie_header(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.config.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        admin_path(state, "")
    ))
    .ok()
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Admin pages are never cached, never framed, load nothing from elsewhere
/// and post forms only to us.
fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.config.admin_token.is_none() {
        return Err(ApiError::NotFound);
    }
    if !logged_in(&state, &headers) {
        return Ok(no_store(Html(login_page(&state, None)).into_response()));
    }
    let csrf = match (&state.config.admin_token, valid_session(&state, &headers)) {
        (Some(token), Some(value)) => session::csrf_token(token, &value).unwrap_or_default(),
        _ => String::new(),
    };
    Ok(no_store(
        Html(dashboard_page(&state, &csrf).await?).into_response(),
    ))
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    /// What the person typed on the confirmation page of a destructive
    /// action; absent on the dashboard's button.
    #[serde(default)]
    confirm: Option<String>,
}

/// A destructive action (key revoke, app delete) asked for from the
/// dashboard: what it removes, and what the person must type to confirm.
struct Destructive<'a> {
    /// The form's path below `/admin`.
    action: &'a str,
    title: &'a str,
    /// What happens, as HTML (escaped by the caller).
    consequences: String,
    /// `the app's name`, `the key's prefix`.
    what: &'a str,
    expected: &'a str,
    button: &'a str,
}

/// The confirmation step of a destructive action, checked on the server so
/// it needs no script: the dashboard's button only asks; the action runs
/// when the form comes back with `confirm` equal to `expected` (and the
/// session's CSRF token, checked before this). `None`: confirmed, go on;
/// otherwise the page to answer (200 the first time, 422 after a wrong
/// entry), and nothing changed.
fn unconfirmed(state: &AppState, form: &ActionForm, d: &Destructive) -> Option<Response> {
    let (status, error) = match form.confirm.as_deref().map(str::trim) {
        Some(typed) if typed == d.expected => return None,
        Some(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "<p class=\"error\" id=\"confirm-error\">That is not {}. Nothing was changed.</p>",
                esc(d.what)
            ),
        ),
        None => (StatusCode::OK, String::new()),
    };
    let body = format!(
        "<main><section id=\"confirm\"><h2>{title}</h2>{error}\
         <p class=\"empty\">{consequences} This cannot be undone.</p>\
         <form class=\"confirm\" method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"confirm-input\">Type {what} to confirm: <code>{expected}</code></label>\
         <input type=\"text\" id=\"confirm-input\" name=\"confirm\" autocomplete=\"off\" required autofocus>\
         <button type=\"submit\" class=\"danger\" id=\"confirm-submit\">{button}</button></form>\
         <p class=\"empty\"><a href=\"{back}\" id=\"cancel\">Cancel, back to the dashboard</a></p></section></main>",
        title = esc(d.title),
        consequences = d.consequences,
        action = esc(&admin_path(state, d.action)),
        csrf = esc(form.csrf.as_deref().unwrap_or_default()),
        what = esc(d.what),
        expected = esc(d.expected),
        button = esc(d.button),
        back = esc(&admin_path(state, "")),
    );
    Some(no_store(
        (
            status,
            Html(page(&format!("atlasgate admin — {}", d.title), &body)),
        )
            .into_response(),
    ))
}

/// A change asked for from the dashboard must be signed in and its form
/// must carry this session's CSRF token. Otherwise: the refusal (403, or
/// 401 without a session), and nothing changes.
fn refusal(state: &AppState, headers: &HeaderMap, form: &ActionForm) -> Option<Response> {
    let Some(token) = &state.config.admin_token else {
        return Some(ApiError::NotFound.into_response());
    };
    let Some(value) = valid_session(state, headers) else {
        let page = login_page(state, Some("Sign in first."));
        return Some(no_store(
            (StatusCode::UNAUTHORIZED, Html(page)).into_response(),
        ));
    };
    let ok = form
        .csrf
        .as_deref()
        .is_some_and(|given| session::verify_csrf(token, &value, given));
    if !ok {
        tracing::warn!("dashboard action without a valid CSRF token refused");
        let body = page(
            "atlasgate admin — refused",
            "<main><section><h2>Refused</h2><p class=\"empty\" id=\"csrf-refused\">This form did not carry this session's token. Nothing was changed. Go back to the dashboard and try again.</p></section></main>",
        );
        return Some(no_store(
            (StatusCode::FORBIDDEN, Html(body)).into_response(),
        ));
    }
    None
}

fn action_result(state: &AppState, r: Result<(), ApiError>) -> Response {
    match r {
        Ok(()) => see_other(&admin_path(state, "")),
        Err(e) => e.into_response(),
    }
}

async fn revoke_key(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path((app, key)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let found = match apps::lifecycle::resolve(&state.store, &app).await {
        Ok(a) => apps::lifecycle::list_keys(&state.store, &a.id)
            .await
            .map(|keys| keys.into_iter().find(|k| k.id == key).map(|k| (a, k))),
        Err(e) => Err(e),
    };
    let (a, k) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return ApiError::NotFound.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let confirm = Destructive {
        action: &format!("/apps/{}/keys/{}/revoke", a.id, k.id),
        title: "Revoke an API key",
        consequences: format!(
            "Key <code>{}…</code> of app <strong>{}</strong> stops working: at once here, within 10 seconds on every other atlasgate process.",
            esc(&k.prefix),
            esc(&a.name)
        ),
        what: "the key's prefix",
        expected: &k.prefix,
        button: "Revoke the key",
    };
    if let Some(page) = unconfirmed(&state, &form, &confirm) {
        return page;
    }
    let r = super::lifecycle::revoke(&state, &app, &key, Actor::dashboard(ip)).await;
    action_result(&state, r)
}

async fn delete_app(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let a = match apps::lifecycle::resolve(&state.store, &app).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let confirm = Destructive {
        action: &format!("/apps/{}/delete", a.id),
        title: "Delete an app",
        consequences: format!(
            "App <strong>{}</strong> is deleted: each of its connections is disconnected (its Jira webhooks deleted), and its keys, connect links, syncs, synced issues and pending events are removed. Its audit records stay.",
            esc(&a.name)
        ),
        what: "the app's name",
        expected: &a.name,
        button: "Delete the app",
    };
    if let Some(page) = unconfirmed(&state, &form, &confirm) {
        return page;
    }
    let r = super::lifecycle::delete(&state, &a.id, Actor::dashboard(ip)).await;
    action_result(&state, r)
}

/// Shows the new secret once, on a page that is never cached.
async fn rotate_secret(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    match super::lifecycle::rotate(&state, &app, Actor::dashboard(ip)).await {
        Ok(secret) => shown_once(
            &state,
            "New webhook signing secret",
            &format!(
                "The previous secret keeps signing deliveries for {} seconds.",
                state.config.lifecycle.webhook_secret_overlap_secs
            ),
            "new-secret",
            &secret,
        ),
        Err(e) => e.into_response(),
    }
}

/// An additional API key for the app (docs/design.md §13), shown once; the
/// app's other keys keep working.
async fn create_key(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(app): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let created = match apps::lifecycle::resolve(&state.store, &app).await {
        Ok(a) => apps::lifecycle::create_key(&state.store, &a.id, &Actor::dashboard(ip)).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(k) => shown_once(
            &state,
            "New API key",
            "The app's other keys keep working until you revoke them.",
            "new-key",
            k.key.expose(),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A secret made for the person at the dashboard: shown on this page once,
/// never stored in clear, never cached.
fn shown_once(state: &AppState, title: &str, note: &str, id: &str, secret: &str) -> Response {
    let body = format!(
        "<main><section><h2>{}</h2>\
         <p class=\"empty\">Shown this once. {}</p>\
         <p class=\"empty\"><code id=\"{}\">{}</code></p>\
         <p class=\"empty\"><a href=\"{}\">Back to the dashboard</a></p></section></main>",
        esc(title),
        esc(note),
        esc(id),
        esc(secret),
        esc(&admin_path(state, "")),
    );
    no_store(Html(page(&format!("atlasgate admin — {title}"), &body)).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let Some(token) = &state.config.admin_token else {
        return Err(ApiError::NotFound);
    };
    if !state.config.admin_token_matches(form.token.trim()) {
        tracing::warn!("admin login with a wrong token");
        super::login_failed(&state, ip, "dashboard").await;
        let page = login_page(&state, Some("That is not the admin token."));
        return Ok(no_store(
            (StatusCode::UNAUTHORIZED, Html(page)).into_response(),
        ));
    }
    let value = session::issue(token, store::now())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("cannot sign the session")))?;
    let mut resp = see_other(&admin_path(&state, ""));
    if let Some(c) = cookie_header(&state, &value, SESSION_SECS) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    tracing::info!("admin logged in");
    crate::audit::record_after(
        &state.store,
        crate::audit::kind::ADMIN_LOGIN,
        crate::audit::Subject::default(),
        &Actor::dashboard(ip),
        serde_json::json!({}),
    )
    .await;
    Ok(resp)
}

async fn logout(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.config.admin_token.is_none() {
        return Err(ApiError::NotFound);
    }
    let mut resp = see_other(&admin_path(&state, ""));
    if let Some(c) = cookie_header(&state, "", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// HTML-escape text for element content and quoted attributes (the same
/// escaping as the connect pages).
pub fn esc(s: &str) -> String {
    crate::pages::escape(s)
}

const CSS: &str = r#"
:root { color-scheme: light; --fg:#172b4d; --muted:#5e6c84; --line:#dfe1e6; --bg:#f4f5f7; --ok:#006644; --okbg:#e3fcef; --warn:#974f0c; --warnbg:#fffae6; --bad:#bf2600; --badbg:#ffebe6; --accent:#0052cc; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:12px 24px; display:flex; align-items:center; justify-content:space-between; }
header h1 { font-size:18px; margin:0; }
main { max-width:1200px; margin:24px auto; padding:0 24px; }
section { background:#fff; border:1px solid var(--line); border-radius:6px; margin-bottom:24px; }
section h2 { font-size:15px; margin:0; padding:12px 16px; border-bottom:1px solid var(--line); }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:8px 16px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
tr:last-child td { border-bottom:0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.empty { padding:16px; color:var(--muted); }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.ok { color:var(--ok); background:var(--okbg); } .warn { color:var(--warn); background:var(--warnbg); } .bad { color:var(--bad); background:var(--badbg); }
.muted { color:var(--muted); }
form.login { max-width:360px; margin:80px auto; background:#fff; border:1px solid var(--line); border-radius:6px; padding:24px; }
form.login h1 { font-size:18px; margin:0 0 16px; }
label { display:block; font-weight:600; margin-bottom:6px; }
input[type=password], input[type=text] { width:100%; padding:8px; border:1px solid var(--line); border-radius:4px; font-size:14px; }
button { margin-top:12px; padding:8px 14px; border:0; border-radius:4px; background:var(--accent); color:#fff; font-weight:600; cursor:pointer; }
header button { margin:0; background:#fff; color:var(--fg); border:1px solid var(--line); }
.error { color:var(--bad); margin:0 0 12px; }
form.inline { display:inline; margin:0 4px 0 0; }
button.small { margin:0; padding:3px 8px; font-size:12px; }
button.danger { background:var(--bad); }
form.confirm { max-width:480px; margin:12px 0; }
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>{body}</body></html>",
        esc(title)
    )
}

fn login_page(state: &AppState, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "atlasgate admin — sign in",
        &format!(
            "<form class=\"login\" method=\"post\" action=\"{}\">\
             <h1>atlasgate admin</h1>{err}\
             <label for=\"token\">Admin token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus>\
             <button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
            esc(&admin_path(state, "/login"))
        ),
    )
}

use crate::store::connections::ConnectionLine;

async fn connections(state: &AppState) -> Result<Vec<ConnectionLine>, sqlx::Error> {
    crate::store::connections::dashboard_lines(state.store.pool()).await
}

/// Atlassian expires a refresh token after 90 days without use.
const REFRESH_INACTIVITY_DAYS: i64 = 90;

fn health(c: &ConnectionLine, now: i64) -> (&'static str, String) {
    match c.status {
        ConnectionStatus::NeedsReauth => ("bad", "needs re-consent".into()),
        ConnectionStatus::Disconnected => ("muted", "disconnected".into()),
        ConnectionStatus::Active => {
            if c.last_refresh_error.is_some() {
                return ("warn", "refresh retrying".into());
            }
            if let Some(issued) = c.refresh_issued_at {
                let left = REFRESH_INACTIVITY_DAYS - (now - issued) / 86_400;
                if left <= 7 {
                    return ("warn", format!("refresh token idle, {left} day(s) left"));
                }
            }
            ("ok", "healthy".into())
        }
    }
}

fn ts(t: Option<i64>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "—".into())
}

/// A one-button form posting `action` with the session's CSRF token.
fn action_button(state: &AppState, csrf: &str, action: &str, id: &str, label: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"small\" id=\"{}\">{}</button></form>",
        esc(&admin_path(state, action)),
        esc(csrf),
        esc(id),
        esc(label)
    )
}

async fn dashboard_page(state: &AppState, csrf: &str) -> Result<String, ApiError> {
    let now = store::now();
    let apps = apps::list(&state.store).await?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<header><h1>atlasgate admin</h1><form method=\"post\" action=\"{}\">\
         <button type=\"submit\" id=\"logout\">Sign out</button></form></header><main>",
        esc(&admin_path(state, "/logout"))
    );

    html.push_str("<section id=\"apps\"><h2>Apps</h2>");
    if apps.is_empty() {
        html.push_str("<p class=\"empty\">No apps yet. Create one with <code>atlasgate apps create --name NAME</code>.</p>");
    } else {
        html.push_str("<table><thead><tr><th>Name</th><th>Id</th><th>Webhook</th><th>Return origins</th><th>Created</th><th>Actions</th></tr></thead><tbody>");
        for a in &apps {
            let origins: Vec<String> = a.return_origins.iter().map(|o| esc(o.as_str())).collect();
            // (path below the app, button id prefix, label)
            let actions: String = [
                ("keys", "new-key", "New API key"),
                ("webhook-secret", "rotate", "Rotate webhook secret"),
                ("delete", "delete", "Delete app"),
            ]
            .iter()
            .map(|(path, id, label)| {
                action_button(
                    state,
                    csrf,
                    &format!("/apps/{}/{path}", a.id),
                    &format!("{id}-{}", a.id),
                    label,
                )
            })
            .collect();
            let _ = write!(
                html,
                "<tr data-app=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
                esc(&a.id),
                esc(&a.name),
                esc(&a.id),
                a.webhook_url
                    .as_ref()
                    .map(|u| esc(u.as_str()))
                    .unwrap_or_else(|| "—".into()),
                if origins.is_empty() {
                    "—".to_string()
                } else {
                    origins.join("<br>")
                },
                rfc3339(a.created_at)
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");

    keys_section(state, &mut html, &apps, csrf).await;

    html.push_str("<section id=\"connections\"><h2>Connections</h2>");
    match connections(state).await {
        Ok(list) if list.is_empty() => html.push_str("<p class=\"empty\">No connections yet.</p>"),
        Ok(list) => {
            html.push_str("<table><thead><tr><th>App</th><th>Owner</th><th>Profile</th><th>Health</th><th>Account</th><th>Site</th><th>Token expires</th><th>Last refresh</th><th>Last used</th></tr></thead><tbody>");
            for c in &list {
                let (class, label) = health(c, now);
                let _ = write!(
                    html,
                    "<tr data-connection=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td>\
                     <td><span class=\"pill {class}\">{}</span> <span class=\"muted\">{}</span></td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&c.id),
                    esc(&c.app_name),
                    esc(&c.owner),
                    esc(&c.profile),
                    esc(&label),
                    esc(c.status.as_str()),
                    c.account_email.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                    c.site_url.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                    ts(c.access_expires_at),
                    ts(c.last_refreshed_at),
                    ts(c.last_used_at),
                );
            }
            html.push_str("</tbody></table>");
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot list connections");
            html.push_str("<p class=\"empty\">Connections are unavailable.</p>");
        }
    }
    html.push_str("</section>");

    syncs_section(state, &mut html, now).await;
    super::points_chart::section(state, &mut html, now).await;
    deliveries_section(state, &mut html, now).await;
    audit_section(state, &mut html).await;
    html.push_str("</main>");
    Ok(page("atlasgate admin", &html))
}

/// Every app's keys (prefix only), each with a revoke button.
async fn keys_section(state: &AppState, html: &mut String, apps: &[apps::App], csrf: &str) {
    html.push_str("<section id=\"keys\"><h2>API keys</h2>");
    let mut rows = String::new();
    for a in apps {
        match apps::lifecycle::list_keys(&state.store, &a.id).await {
            Ok(keys) => {
                for k in keys {
                    let _ = write!(
                        rows,
                        "<tr data-key=\"{}\"><td>{}</td><td><code>{}</code></td><td><code>{}…</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&k.id),
                        esc(&a.name),
                        esc(&k.id),
                        esc(&k.prefix),
                        rfc3339(k.created_at),
                        ts(k.last_used_at),
                        action_button(
                            state,
                            csrf,
                            &format!("/apps/{}/keys/{}/revoke", a.id, k.id),
                            &format!("revoke-{}", k.id),
                            "Revoke"
                        ),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "dashboard: cannot list keys");
            }
        }
    }
    if rows.is_empty() {
        html.push_str("<p class=\"empty\">No keys.</p>");
    } else {
        html.push_str("<table><thead><tr><th>App</th><th>Key</th><th>Prefix</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody>");
        html.push_str(&rows);
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
}

/// The latest audit records.
async fn audit_section(state: &AppState, html: &mut String) {
    html.push_str("<section id=\"audit\"><h2>Audit trail</h2>");
    let filter = crate::store::audit::AuditFilter::default();
    match crate::store::audit::page(state.store.pool(), &filter, 50).await {
        Ok(p) if p.items.is_empty() => html.push_str("<p class=\"empty\">No records yet.</p>"),
        Ok(p) => {
            html.push_str("<table><thead><tr><th>When</th><th>Kind</th><th>App</th><th>Connection</th><th>Key</th><th>Client</th><th>Detail</th></tr></thead><tbody>");
            for r in &p.items {
                let _ = write!(
                    html,
                    "<tr data-audit=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    r.seq,
                    rfc3339(r.at),
                    esc(&r.kind),
                    opt(r.app_id.as_deref()),
                    opt(r.connection_id.as_deref()),
                    opt(r.key_id.as_deref()),
                    opt(r.client_ip.as_deref()),
                    esc(&r.detail.to_string()),
                );
            }
            html.push_str("</tbody></table>");
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot list audit records");
            html.push_str("<p class=\"empty\">The audit trail is unavailable.</p>");
        }
    }
    html.push_str("</section>");
}

fn opt(s: Option<&str>) -> String {
    s.map(esc).unwrap_or_else(|| "—".into())
}

/// Syncs with their progress. A failing query shows as a note, not a 500:
/// the rest of the dashboard is still worth seeing.
async fn syncs_section(state: &AppState, html: &mut String, now: i64) {
    html.push_str("<section id=\"syncs\"><h2>Syncs</h2>");
    match sync_rows::overview(state.store.pool(), 200).await {
        Ok(list) if list.is_empty() => html.push_str("<p class=\"empty\">No syncs yet.</p>"),
        Ok(list) => {
            html.push_str("<table><thead><tr><th>App</th><th>Owner</th><th>Site</th><th>JQL</th><th>State</th>\
                <th>Issues synced</th><th>Last run</th><th>Last error</th><th>Webhook</th></tr></thead><tbody>");
            for s in &list {
                let class = match s.state {
                    SyncState::Idle => "ok",
                    SyncState::Failed => "bad",
                    SyncState::Running | SyncState::Pending => "warn",
                    SyncState::Stopped => "muted",
                };
                let progress = match s.pass_kind {
                    Some(kind) => format!(
                        "{} pass: {}/{} parts, {} stored",
                        kind.as_str(),
                        s.partitions_done,
                        s.partitions,
                        s.pass_stored
                    ),
                    None => format!("{} pass(es) done", s.passes),
                };
                let webhook = if !s.webhooks {
                    "off".to_string()
                } else {
                    match (s.webhook_id, &s.webhook_error) {
                        (_, Some(err)) => format!("<span class=\"pill bad\">on</span> {}", esc(err)),
                        (Some(_), None) => {
                            let expires = match s.webhook_expires_at {
                                Some(t) if t <= now => format!("expired {}", rfc3339(t)),
                                Some(t) => format!("expires {}", rfc3339(t)),
                                None => "registered".into(),
                            };
                            format!("<span class=\"pill ok\">on</span> <span class=\"muted\">{expires}</span>")
                        }
                        (None, None) => "<span class=\"pill warn\">on</span> <span class=\"muted\">not registered yet</span>".into(),
                    }
                };
                let _ = write!(
                    html,
                    "<tr data-sync=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td>\
                     <td><span class=\"pill {class}\">{}</span> <span class=\"muted\">{progress}</span></td>\
                     <td class=\"issues\">{}</td><td>{}</td><td>{}</td><td>{webhook}</td></tr>",
                    esc(&s.id),
                    esc(&s.app_name),
                    esc(&s.owner),
                    esc(&s.site_url),
                    esc(&s.jql),
                    s.state.as_str(),
                    s.issues_synced,
                    ts(s.last_run_at),
                    opt(s.last_error.as_deref()),
                );
            }
            html.push_str("</tbody></table>");
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot list syncs");
            html.push_str("<p class=\"empty\">Syncs are unavailable.</p>");
        }
    }
    html.push_str("</section>");
}

/// The latest outgoing event deliveries of every app.
async fn deliveries_section(state: &AppState, html: &mut String, now: i64) {
    html.push_str("<section id=\"deliveries\"><h2>Recent deliveries</h2>");
    match events::recent_deliveries(state.store.pool(), 50).await {
        Ok(list) if list.is_empty() => html.push_str("<p class=\"empty\">No deliveries yet.</p>"),
        Ok(list) => {
            html.push_str("<table><thead><tr><th>When</th><th>App</th><th>Event</th><th>Connection</th><th>State</th>\
                <th>Attempts</th><th>Last error</th><th>Next attempt</th></tr></thead><tbody>");
            for d in &list {
                let class = match d.delivery_state {
                    DeliveryState::Delivered => "ok",
                    DeliveryState::Failed => "bad",
                    DeliveryState::Pending => "warn",
                    DeliveryState::Skipped => "muted",
                };
                let connection = match (&d.connection_id, &d.connection_owner) {
                    (Some(id), Some(owner)) => format!(
                        "<code>{}</code> <span class=\"muted\">{}</span>",
                        esc(owner),
                        esc(id)
                    ),
                    (Some(id), None) => format!("<code>{}</code>", esc(id)),
                    (None, _) => "—".into(),
                };
                let last_error = match (&d.last_error, d.last_status) {
                    (Some(e), _) => esc(e),
                    (None, Some(status)) => format!("<span class=\"muted\">HTTP {status}</span>"),
                    (None, None) => "—".into(),
                };
                let next = if d.delivery_state == DeliveryState::Pending {
                    if d.next_attempt_at <= now {
                        "due now".to_string()
                    } else {
                        rfc3339(d.next_attempt_at)
                    }
                } else {
                    "—".into()
                };
                let _ = write!(
                    html,
                    "<tr data-event=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{connection}</td>\
                     <td><span class=\"pill {class}\">{}</span></td><td>{}</td><td>{last_error}</td><td>{next}</td></tr>",
                    esc(&d.id),
                    rfc3339(d.created_at),
                    esc(&d.app_name),
                    esc(&d.event_type),
                    d.delivery_state.as_str(),
                    d.attempts,
                );
            }
            html.push_str("</tbody></table>");
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot list deliveries");
            html.push_str("<p class=\"empty\">Deliveries are unavailable.</p>");
        }
    }
    html.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
