//! The one place errors become HTTP: RFC 9457 `application/problem+json`.
//!
//! Every handler returns `Result<_, ApiError>`. Internal errors are logged
//! (with the request id) and answered as a bare 500 that leaks nothing.
//! Responses that did not come from an `ApiError` (framework rejections,
//! timeouts, body limits, unknown routes) are rewritten into the same shape by
//! [`problem_fallback`], unless a handler marked its response as
//! [`Passthrough`] (the proxy relays Atlassian's own errors untouched).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use atlasgate_core::jira::writes::{TransitionOption, UserRef};
use atlasgate_core::store::StoreError;
use atlasgate_core::Error as CoreError;

use crate::request::current_request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";
/// Base of the `type` URIs of our problems (`{BASE}{slug}`).
pub const PROBLEM_TYPE_BASE: &str = "https://atlasgate.dev/problems/";

/// One invalid request field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, as sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The `x-request-id` of the request, for support and logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For `validation` problems: each bad field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
    /// For `reauth-required`: where to send the person to connect again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
    /// For `site-required`: the grant's sites, one of which to name as `cloud_id`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::schema::AccessibleSite>, nullable = false)]
    pub sites: Vec<atlasgate_core::atlassian::AccessibleSite>,
    /// For `no-transition`: the status names the issue can move to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable: Option<Vec<String>>,
    /// For `no-transition`: the transitions now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::schema::TransitionOption>>)]
    pub transitions: Option<Vec<TransitionOption>>,
    /// For `ambiguous-user`: the people the search matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::schema::UserRef>>)]
    pub candidates: Option<Vec<UserRef>>,
    /// For `version-conflict`: the page's current version (read it, then update from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request is invalid")]
    Validation(Vec<FieldError>),
    /// Missing or wrong credentials. The detail says which, never the value.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// Missing — or belonging to another app, which must look the same.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    /// The whole request exceeded the server's time limit.
    #[error("the request took longer than the server's time limit")]
    Timeout,
    /// The connection's grant is dead; send the person to `connect_url`.
    #[error("the connection needs a new consent: send the person to connect_url")]
    ReauthRequired { connect_url: String },
    /// An import's grant covers several sites and names none: 409 with the sites.
    #[error("the grant covers {} sites; send one of them as cloud_id", sites.len())]
    SiteRequired {
        sites: Vec<atlasgate_core::atlassian::AccessibleSite>,
    },
    /// 409: no transition of the issue leads to the status asked for.
    #[error("{detail}")]
    NoTransition {
        detail: String,
        reachable: Vec<String>,
        transitions: Vec<TransitionOption>,
    },
    /// 409: a user search matched several people.
    #[error("{detail}")]
    AmbiguousUser {
        detail: String,
        candidates: Vec<UserRef>,
    },
    /// 409: the page has moved on from the version the caller read.
    #[error("{detail}")]
    VersionConflict { detail: String, current: i64 },
    /// Temporarily unable (e.g. Atlassian down); answered 503 with `Retry-After`.
    #[error("{detail}")]
    RetryLater {
        detail: String,
        retry_after_secs: u64,
    },
    /// Atlassian's rate limit asks for a longer pause than we wait inline;
    /// answered 429 with `Retry-After`.
    #[error("Atlassian's rate limit for this site is exhausted; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Anything else: logged in full, answered as a bare 500.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// Through the core's one classification: a "database away" error in the
/// chain answers 503 with `Retry-After`, anything else a bare 500.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        CoreError::from(e).into()
    }
}

/// The one translation of the core's errors into answers: synchronous, no
/// I/O (the core has already put what the answer needs into the error).
impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound => ApiError::NotFound,
            CoreError::Invalid { field, message } => ApiError::validation(field, message),
            CoreError::Conflict(msg) => ApiError::Conflict(msg),
            CoreError::ReauthRequired { connect_url } => ApiError::ReauthRequired { connect_url },
            CoreError::Disconnected => ApiError::Conflict("the connection is disconnected".into()),
            e @ CoreError::NoSite => ApiError::Conflict(e.to_string()),
            CoreError::SiteRequired { sites } => ApiError::SiteRequired { sites },
            CoreError::RefreshUnavailable { retry_after_secs } => ApiError::RetryLater {
                detail: "Atlassian could not refresh the token right now".into(),
                retry_after_secs,
            },
            e @ CoreError::RefreshRejected { .. } => ApiError::BadGateway(e.to_string()),
            e @ CoreError::Unreachable(_) => ApiError::BadGateway(e.to_string()),
            e @ CoreError::OutcomeUnknown => ApiError::BadGateway(e.to_string()),
            e @ CoreError::Timeout => ApiError::GatewayTimeout(e.to_string()),
            CoreError::RateLimited { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            e @ CoreError::Decode(_) => ApiError::BadGateway(e.to_string()),
            CoreError::Upstream { status, messages } => {
                let msg = messages.unwrap_or_else(|| format!("Atlassian answered {status}"));
                match status {
                    StatusCode::NOT_FOUND => ApiError::NotFound,
                    StatusCode::BAD_REQUEST => ApiError::BadRequest(msg),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        ApiError::Forbidden(format!(
                            "Atlassian refused the connection's token ({}): {msg}",
                            status.as_u16()
                        ))
                    }
                    s if s.is_server_error() => {
                        ApiError::BadGateway(format!("Atlassian answered {s}"))
                    }
                    _ => ApiError::BadGateway(format!("Atlassian answered {status}: {msg}")),
                }
            }
            CoreError::NoTransition {
                ref reachable,
                ref transitions,
                ..
            } => ApiError::NoTransition {
                detail: e.to_string(),
                reachable: reachable.clone(),
                transitions: transitions.clone(),
            },
            CoreError::AmbiguousUser { ref candidates, .. } => ApiError::AmbiguousUser {
                detail: e.to_string(),
                candidates: candidates.clone(),
            },
            CoreError::VersionConflict { current, .. } => ApiError::VersionConflict {
                detail: e.to_string(),
                current,
            },
            e @ CoreError::StoreUnavailable => ApiError::RetryLater {
                detail: e.to_string(),
                retry_after_secs: atlasgate_core::error::STORE_RETRY_AFTER_SECS,
            },
            CoreError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Errors of the core's parts, through [`CoreError`] (the one mapping).
macro_rules! via_core {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                CoreError::from(e).into()
            }
        }
    )*};
}

via_core!(
    StoreError,
    sqlx::Error,
    atlasgate_core::vault::VaultError,
    atlasgate_core::vault::refresh::RefreshError,
    atlasgate_core::atlassian::AtlassianError,
    atlasgate_core::apps::AppsError
);

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::from(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ReauthRequired { .. } => StatusCode::CONFLICT,
            ApiError::SiteRequired { .. } => StatusCode::CONFLICT,
            ApiError::NoTransition { .. }
            | ApiError::AmbiguousUser { .. }
            | ApiError::VersionConflict { .. } => StatusCode::CONFLICT,
            ApiError::RetryLater { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last segment of the `type` URI.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Validation(_) => "validation",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::ServiceUnavailable(_) => "service-unavailable",
            ApiError::BadGateway(_) => "bad-gateway",
            ApiError::GatewayTimeout(_) => "gateway-timeout",
            ApiError::Timeout => "timeout",
            ApiError::ReauthRequired { .. } => "reauth-required",
            ApiError::SiteRequired { .. } => "site-required",
            ApiError::NoTransition { .. } => "no-transition",
            ApiError::AmbiguousUser { .. } => "ambiguous-user",
            ApiError::VersionConflict { .. } => "version-conflict",
            ApiError::RetryLater { .. } => "service-unavailable",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Internal(_) => None,
            ApiError::Validation(errs) => Some(format!("{} field(s) are invalid", errs.len())),
            ApiError::NotFound => Some("no such resource".to_string()),
            other => Some(other.to_string()),
        };
        Problem {
            type_: format!("{PROBLEM_TYPE_BASE}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            request_id: current_request_id(),
            errors: match self {
                ApiError::Validation(errs) => errs.clone(),
                _ => Vec::new(),
            },
            connect_url: match self {
                ApiError::ReauthRequired { connect_url } => Some(connect_url.clone()),
                _ => None,
            },
            sites: match self {
                ApiError::SiteRequired { sites } => sites.clone(),
                _ => Vec::new(),
            },
            reachable: match self {
                ApiError::NoTransition { reachable, .. } => Some(reachable.clone()),
                _ => None,
            },
            transitions: match self {
                ApiError::NoTransition { transitions, .. } => Some(transitions.clone()),
                _ => None,
            },
            candidates: match self {
                ApiError::AmbiguousUser { candidates, .. } => Some(candidates.clone()),
                _ => None,
            },
            current_version: match self {
                ApiError::VersionConflict { current, .. } => Some(*current),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            // `{:#}` prints the cause chain; our error types never carry secrets.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let status = self.status();
        let mut resp = problem_response(status, &self.to_problem());
        if let ApiError::RetryLater {
            retry_after_secs, ..
        }
        | ApiError::RateLimited { retry_after_secs } = &self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

/// Put into a response's extensions to keep [`problem_fallback`] away from it.
#[derive(Debug, Clone, Copy)]
pub struct Passthrough;

/// Rewrites error responses that are not problem+json (axum rejections,
/// timeouts, body limits, 404 for unknown routes, 405) into problem+json.
/// A rejection's plain-text reason becomes the `detail`.
pub async fn problem_fallback(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.extensions().get::<Passthrough>().is_some()
    {
        return resp;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Only bodies nobody designed: empty or plain text (framework rejections).
    // JSON and HTML error bodies were written on purpose.
    if !(ct.is_empty() || ct.starts_with("text/plain")) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let detail = if ct.starts_with("text/plain") && !status.is_server_error() {
        axum::body::to_bytes(body, 4096)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|s| !s.is_empty())
    } else {
        None
    };
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType(detail.clone().unwrap_or_default())
        }
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            ApiError::BadRequest(detail.clone().unwrap_or_default())
        }
        _ => ApiError::BadRequest(String::new()),
    };
    let mut problem = err.to_problem();
    problem.status = status.as_u16();
    problem.title = status.canonical_reason().unwrap_or("Error").to_string();
    if !matches!(
        status,
        StatusCode::NOT_FOUND
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::GATEWAY_TIMEOUT
    ) {
        problem.type_ = format!(
            "{PROBLEM_TYPE_BASE}{}",
            match status.as_u16() {
                400 => "bad-request",
                // Well-formed JSON of the wrong shape (axum's `Json` rejection).
                422 => "validation",
                405 => "method-not-allowed",
                415 => "unsupported-media-type",
                s if s >= 500 => "internal",
                _ => "error",
            }
        );
        problem.detail = detail;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        problem.detail = Some(format!(
            "request body is larger than the {} byte limit",
            crate::request::BODY_LIMIT_BYTES
        ));
    }
    let mut out = problem_response(status, &problem);
    // Keep headers such as `allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A plain 404 problem for the router fallback.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    async fn call(router: Router, path: &str) -> (StatusCode, String, serde_json::Value) {
        let resp = router
            .layer(axum::middleware::from_fn(problem_fallback))
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            ct,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn bare_errors_become_problems_and_designed_bodies_stay() {
        let router = Router::new()
            .route(
                "/timeout",
                get(|| async { (StatusCode::GATEWAY_TIMEOUT, "") }),
            )
            .route(
                "/plain",
                get(|| async { (StatusCode::BAD_REQUEST, "missing field `x`") }),
            )
            .route(
                "/boom",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "db password is hunter2") }),
            )
            .route(
                "/json",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(serde_json::json!({"status": "not_ready"})),
                    )
                }),
            )
            .route(
                "/relay",
                get(|| async {
                    let mut r = (StatusCode::NOT_FOUND, "upstream says no").into_response();
                    r.extensions_mut().insert(Passthrough);
                    r
                }),
            );
        let (s, ct, body) = call(router.clone(), "/timeout").await;
        assert_eq!(
            (s, ct.as_str()),
            (StatusCode::GATEWAY_TIMEOUT, PROBLEM_JSON)
        );
        assert!(body["type"].as_str().unwrap().ends_with("/timeout"));
        assert_eq!(body["status"], 504);

        let (_, _, body) = call(router.clone(), "/plain").await;
        assert_eq!(body["detail"], "missing field `x`");

        let (s, ct, body) = call(router.clone(), "/boom").await;
        assert_eq!(
            (s, ct.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, PROBLEM_JSON)
        );
        assert!(
            !body.to_string().contains("hunter2"),
            "server error text must not leak"
        );

        let (_, ct, body) = call(router.clone(), "/json").await;
        assert!(ct.starts_with("application/json"));
        assert_eq!(body["status"], "not_ready");

        let (s, ct, _) = call(router, "/relay").await;
        assert_eq!(
            (s, ct.as_str()),
            (StatusCode::NOT_FOUND, "text/plain; charset=utf-8")
        );
    }

    #[test]
    fn a_database_away_answers_503_with_retry_after_wherever_it_is_wrapped() {
        let away = || StoreError::Sqlx(sqlx::Error::PoolTimedOut);
        for err in [
            ApiError::from(away()),
            ApiError::internal(anyhow::Error::from(away()).context("reading a row")),
            ApiError::from(atlasgate_core::vault::refresh::RefreshError::from(away())),
        ] {
            let resp = err.into_response();
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(resp.headers().contains_key(header::RETRY_AFTER));
        }
        // Positive control: another database error stays a bare 500.
        let other = ApiError::from(StoreError::Sqlx(sqlx::Error::RowNotFound));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn internal_errors_say_nothing() {
        let p = ApiError::internal(anyhow::anyhow!("secret detail")).to_problem();
        assert_eq!(p.status, 500);
        assert!(p.detail.is_none());
        assert!(!serde_json::to_string(&p).unwrap().contains("secret"));
    }
}
