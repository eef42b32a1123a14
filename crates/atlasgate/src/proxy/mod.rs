//! The authenticated proxy (docs/design.md §3):
//! `ANY /v1/connections/{id}/proxy/jira/{path…}` → `{ATLASSIAN_API_URL}/ex/jira/{cloud_id}/{path…}`
//! (and `…/proxy/confluence/…`) for the connection's selected site.
//!
//! The app's key is swapped for the connection's access token; method, query,
//! body and the headers client libraries need pass through (not the app's
//! `Authorization`, cookies or hop-by-hop headers); bodies stream both ways.
//! Atlassian's own answers, errors included, are relayed untouched; only what
//! atlasgate itself decides (unsafe path, re-consent, unreachable) is
//! problem+json. Retries, 401 → refresh, and rate limits are the client
//! layer's ([`crate::atlassian::client`]).

pub mod rewrite;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::TryStreamExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::apps::{AppConnection, CachedToken};
use crate::atlassian::{budget, ApiRequest, Product, RequestBody};
use crate::error::{ApiError, Passthrough};
use crate::state::AppState;
use crate::store::connections::ConnectionRow;

pub use atlasgate_core::atlassian::path::{ProxyPath, UnsafePath};

/// Bodies up to this size are buffered so that the request can be replayed
/// after a 401 → refresh (or a retried 5xx); larger ones stream, sent once.
pub const REPLAYABLE_BODY_LIMIT: u64 = 1024 * 1024;

/// A connection's use is noted at most this often (`last_used_at`, written
/// in batches off the request path: `atlasgate_core::last_used`).
pub(crate) const TOUCH_EVERY_SECS: i64 = 60;

#[derive(OpenApi)]
#[openapi(paths(proxy_jira_doc, proxy_confluence_doc))]
struct ProxyDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ProxyDoc::openapi())
        .route("/v1/connections/{id}/proxy/jira/{*path}", any(proxy_jira))
        .route(
            "/v1/connections/{id}/proxy/confluence/{*path}",
            any(proxy_confluence),
        )
}

/// Proxy to Jira
///
/// Any method. `{path}` (may hold several segments) is appended to
/// `{ATLASSIAN_API_URL}/ex/jira/{cloud_id}/` of the selected site, e.g.
/// `rest/api/3/myself`. Atlassian's answer is relayed as is, streamed.
#[utoipa::path(
    method(get, post, put, delete, patch),
    path = "/v1/connections/{id}/proxy/jira/{path}",
    tag = "proxy",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("path" = String, Path, description = "Path below the site's Jira base, e.g. `rest/api/3/myself` (several segments)"),
    ),
    responses(
        (status = 200, description = "Jira's answer, relayed (any status Jira sends)"),
        (status = 400, description = "Unsafe path (`..`, encoded slash, host, gateway prefix)", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` (with `connect_url`), disconnected, or no site selected", body = crate::error::Problem),
        (status = 429, description = "The site's rate limit asks for a long pause; see Retry-After", body = crate::error::Problem),
        (status = 502, description = "Atlassian cannot be reached", body = crate::error::Problem),
        (status = 504, description = "Atlassian did not answer in time", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
#[allow(dead_code)]
async fn proxy_jira_doc() {}

/// Proxy to Confluence
///
/// Like the Jira proxy, to `{ATLASSIAN_API_URL}/ex/confluence/{cloud_id}/`,
/// e.g. `wiki/api/v2/spaces`.
#[utoipa::path(
    method(get, post, put, delete, patch),
    path = "/v1/connections/{id}/proxy/confluence/{path}",
    tag = "proxy",
    params(
        ("id" = String, Path, description = "Connection id"),
        ("path" = String, Path, description = "Path below the site's Confluence base, e.g. `wiki/api/v2/spaces`"),
    ),
    responses(
        (status = 200, description = "Confluence's answer, relayed (any status)"),
        (status = 400, description = "Unsafe path", body = crate::error::Problem),
        (status = 404, description = "No such connection (for this app)", body = crate::error::Problem),
        (status = 409, description = "`reauth-required` (with `connect_url`), disconnected, or no site selected", body = crate::error::Problem),
        (status = 502, description = "Atlassian cannot be reached", body = crate::error::Problem),
        (status = 504, description = "Atlassian did not answer in time", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
#[allow(dead_code)]
async fn proxy_confluence_doc() {}

async fn proxy_jira(
    State(state): State<AppState>,
    conn: AppConnection<CachedToken>,
    req: Request,
) -> Response {
    proxy(state, conn, Product::Jira, req).await
}

async fn proxy_confluence(
    State(state): State<AppState>,
    conn: AppConnection<CachedToken>,
    req: Request,
) -> Response {
    proxy(state, conn, Product::Confluence, req).await
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus
/// what must not cross: the app's credentials, cookies, and forwarding
/// details about the app's network.
fn hop_or_private(name: &HeaderName, connection_listed: &[String]) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "cookie"
            | "set-cookie"
            | "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
            | "content-length"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
            | "via"
    ) || connection_listed.iter().any(|c| c == name.as_str())
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        // Answers come back uncompressed so that their links can be rewritten.
        if !hop_or_private(name, &listed) && name != header::ACCEPT_ENCODING {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The raw (still encoded) path after `/proxy/{product}/`.
fn raw_tail(uri_path: &str, product: Product) -> Option<&str> {
    let marker = format!("/proxy/{}/", product.as_str());
    let at = uri_path.find(&marker)?;
    Some(&uri_path[at + marker.len()..])
}

async fn proxy(
    state: AppState,
    conn: AppConnection<CachedToken>,
    product: Product,
    req: Request,
) -> Response {
    match forward(&state, conn, product, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// `conn` is the calling app's (the [`AppConnection`] extractor answered
/// 404 for another app's before anything happened to it, not even a
/// refresh). When the token cache held it (as `/token` serves it: see
/// `vault::token_cache`), no database read happens on the way.
async fn forward(
    state: &AppState,
    conn: AppConnection<CachedToken>,
    product: Product,
    req: Request,
) -> Result<Response, ApiError> {
    let id = conn.row.id.clone();
    let (parts, body) = req.into_parts();
    let tail = raw_tail(parts.uri.path(), product).unwrap_or("");
    let path = ProxyPath::parse(tail)
        .map_err(|e| ApiError::BadRequest(format!("unsafe proxy path: {e}")))?;

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let hint = axum::body::HttpBody::size_hint(&body);
    let body = if hint.exact() == Some(0) {
        RequestBody::Empty
    } else if declared.is_some_and(|n| n <= REPLAYABLE_BODY_LIMIT) {
        let bytes = axum::body::to_bytes(body, REPLAYABLE_BODY_LIMIT as usize)
            .await
            .map_err(|_| ApiError::BadRequest("could not read the request body".into()))?;
        RequestBody::Bytes(bytes)
    } else {
        let stream = body.into_data_stream().map_err(std::io::Error::other);
        RequestBody::Stream(reqwest::Body::wrap_stream(stream))
    };

    let request = ApiRequest {
        product,
        method: parts.method.clone(),
        path: path.as_str().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: forwardable(&parts.headers),
        body,
        timeout: None,
    };
    let fresh = match conn.cached {
        Some(fresh) => fresh,
        None => {
            let fresh = state
                .refresher
                .access_token_for_app(std::sync::Arc::unwrap_or_clone(conn.row))
                .await?;
            if let Some(ticket) = conn.ticket {
                state.refresher.token_cache().fill(ticket, &fresh);
            }
            fresh
        }
    };
    let answer = state.atlassian.send_with_token(fresh, request).await?;
    touch_used_cached(state, &answer.connection);

    let status = answer.status;
    let listed = connection_listed(&answer.headers);
    // JSON answers carry gateway links (`self`, `next`); point them at us.
    let is_json = answer
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"))
        && !answer.headers.contains_key(header::CONTENT_ENCODING);
    let rewrite = is_json;
    let mut out = Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        for (name, value) in &answer.headers {
            // content-length stays when the body passes unchanged: the
            // streamed body has exactly that length.
            let keep = if name == header::CONTENT_LENGTH {
                !rewrite
            } else {
                !hop_or_private(name, &listed)
            };
            if keep {
                h.append(name.clone(), value.clone());
            }
        }
    }
    let stream = answer.response.bytes_stream();
    // A JSON read is charged the objects it returns, counted as they pass;
    // anything else its estimate (the charge dropped unsettled).
    let stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>> =
        match answer.charge {
            Some(charge) if is_json => Box::pin(budget::metered(stream, charge)),
            _ => Box::pin(stream),
        };
    let body = match (rewrite, answer.connection.site_cloud_id.as_ref()) {
        (true, Some(cloud_id)) => {
            let from = state
                .atlassian
                .site_base(product, cloud_id)
                .trim_end_matches('/')
                .as_bytes()
                .to_vec();
            let to = format!(
                "{}/v1/connections/{}/proxy/{}",
                state.config.public_url.as_str().trim_end_matches('/'),
                id,
                product.as_str()
            );
            Body::from_stream(rewrite::replace_stream(
                stream,
                from,
                bytes::Bytes::from(to),
            ))
        }
        _ => Body::from_stream(stream),
    };
    let mut resp = out.body(body).map_err(ApiError::internal)?;
    // Atlassian's own errors are relayed as they are, not rewritten.
    resp.extensions_mut().insert(Passthrough);
    Ok(resp)
}

/// Note use of the connection, at most once a minute (the row's
/// `last_used_at` says when it was last noted), and copy the note into the
/// cached row so that cached reads keep that throttle. The write happens in
/// a batch within seconds (`atlasgate_core::last_used`), never on the
/// request path.
pub(crate) fn touch_used_cached(state: &AppState, row: &ConnectionRow) {
    let now = crate::store::now();
    if row.last_used_at.is_some_and(|t| now - t < TOUCH_EVERY_SECS) {
        return;
    }
    state.last_used.note(&row.id, now);
    state.refresher.token_cache().note_used(&row.id, now);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_details_and_credentials_never_cross() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer agk_the_apps_key"),
            ("cookie", "atlasgate_admin=x"),
            ("forwarded", "for=192.0.2.60;proto=http"),
            ("x-forwarded-for", "192.0.2.60"),
            ("x-forwarded-host", "apps.example"),
            ("x-forwarded-proto", "http"),
            ("x-real-ip", "192.0.2.60"),
            ("via", "1.1 edge"),
            ("accept-encoding", "gzip"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "named by Connection"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-atlassian-force-account-id", "true"),
        ] {
            h.append(HeaderName::from_static(name), value.parse().unwrap());
        }
        let out = forwardable(&h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["accept", "content-type", "x-atlassian-force-account-id"]
        );
    }
}
