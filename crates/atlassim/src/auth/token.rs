//! `POST /oauth/token`: the authorization-code and refresh-token grants.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::store::IssuedTokens;
use super::OAuthError;
use crate::model::AppState;

/// Every documented example sends JSON; form bodies (RFC 6749) work too.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    expires_in: i64,
    scope: String,
    token_type: &'static str,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(t: IssuedTokens) -> Self {
        TokenResponse {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            scope: t.scope,
            token_type: "Bearer",
        }
    }
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<TokenRequest, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("Malformed form body".into()))
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Ok(TokenRequest::default())
    } else {
        serde_json::from_slice(body)
            .map_err(|_| OAuthError::InvalidRequest("Malformed JSON body".into()))
    }
}

fn required(value: Option<String>, name: &str) -> Result<String, OAuthError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest(format!("Missing required parameter: {name}")))
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, OAuthError> {
    let req = parse_body(&headers, &body)?;
    let grant_type = required(req.grant_type, "grant_type")?;
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return Err(OAuthError::UnsupportedGrantType);
    }
    let client_id = req
        .client_id
        .filter(|c| !c.is_empty())
        .ok_or(OAuthError::Unauthorized)?;
    let secret = req.client_secret.unwrap_or_default();
    let now = state.clock.now();
    let mut world = state.world();
    let world = &mut *world;
    let client_ok = world
        .client(&client_id)
        .is_some_and(|c| constant_time_eq(c.client_secret.as_bytes(), secret.as_bytes()));
    if !client_ok {
        return Err(OAuthError::Unauthorized);
    }
    let issued = if grant_type == "authorization_code" {
        let code = required(req.code, "code")?;
        let redirect_uri = required(req.redirect_uri, "redirect_uri")?;
        let issued =
            world
                .auth
                .exchange_code(&state.config, now, &client_id, &code, &redirect_uri)?;
        world.stats.code_exchanges += 1;
        issued
    } else {
        let refresh_token = required(req.refresh_token, "refresh_token")?;
        world.auth.refresh(
            &state.config,
            now,
            &mut world.stats,
            &client_id,
            &refresh_token,
        )?
    };
    Ok(Json(issued.into()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
