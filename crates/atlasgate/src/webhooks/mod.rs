//! `POST /webhooks/jira`: verify the JWT, read the delivery's identifier and
//! hand it to the ingest engine ([`atlasgate_core::webhooks`]), which stores
//! it durably and treats it as a hint: the issue it names is re-read from
//! Jira with each owning connection's token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;
pub use atlasgate_core::webhooks::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_jira_webhook))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Receive a Jira webhook
///
/// For Jira only. Answers 204 once the delivery is stored (or was already:
/// duplicates are ignored); 401 when the JWT does not verify (HS256 with the
/// OAuth client secret, `iss` = the client id, live `exp`), changing nothing.
/// The body is a hint: what is stored and announced is what Jira answers
/// when the issue is re-read with each owning connection's token.
#[utoipa::path(
    post,
    path = "/webhooks/jira",
    tag = "webhooks",
    request_body(content = Object, description = "Jira's webhook body", content_type = "application/json"),
    params(
        ("X-Atlassian-Webhook-Identifier" = String, Header, description = "Unique per delivery, the same on retries"),
    ),
    responses(
        (status = 204, description = "Stored (or a duplicate)"),
        (status = 400, description = "Not a Jira webhook body", body = crate::error::Problem),
        (status = 401, description = "Missing, forged or expired JWT", body = crate::error::Problem),
    )
)]
pub async fn receive_jira_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (identifier, retry, payload) = match accept(&state, &headers, &body) {
        Ok(v) => v,
        Err(e) => {
            state.metrics.jira_webhook("rejected");
            return Err(e);
        }
    };
    receive(&state, &identifier, retry, &payload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify the JWT and read the delivery's identifier, retry count and body.
fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, i64, Value), ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized(
        "missing `Authorization: Bearer` JWT",
    ))?;
    verify_jwt(token, &state.config.client_id, &state.config.client_secret)
        .map_err(|_| ApiError::Unauthorized("the webhook JWT does not verify or has expired"))?;
    let identifier = headers
        .get(IDENTIFIER_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| ApiError::BadRequest("missing X-Atlassian-Webhook-Identifier".into()))?
        .to_string();
    let retry: i64 = headers
        .get(RETRY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    Ok((identifier, retry, payload))
}
