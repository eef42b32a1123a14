//! `POST /v1/connect-sessions`: an app asks for a connect link for one owner.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::types::ReturnOrigin;
use crate::apps::AuthenticatedApp;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use atlasgate_core::connect::NewConnectSession;

/// Scopes atlasgate itself needs in every grant: a refresh token, and `/me`.
const REQUIRED_SCOPES: &[&str] = &["offline_access", "read:me"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_connect_session))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionRequest {
    /// The app's identifier for whoever connects (`team:42`), 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub owner: String,
    /// A configured profile; default `jira`.
    #[serde(default)]
    pub profile: Option<String>,
    /// Where to send the person afterwards; its origin must be one of the
    /// app's allowed return origins. Receives `status=connected&connection_id=…`
    /// or `status=error&error=CODE`.
    #[serde(default)]
    pub return_to: Option<String>,
    /// Scopes to request instead of the profile's (`offline_access` and
    /// `read:me` are always added).
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::schema::Scope>>, inline)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectSessionResponse {
    pub id: String,
    /// Send the person's browser here.
    pub connect_url: String,
    /// RFC 3339; the link works once, until then.
    pub expires_at: String,
}

/// Turn a request into a session, listing every invalid field at once.
pub fn parse_request(
    state: &AppState,
    app: &AuthenticatedApp,
    req: ConnectSessionRequest,
) -> Result<NewConnectSession, ApiError> {
    let mut errors = Vec::new();
    let owner_len = req.owner.chars().count();
    if owner_len == 0 || owner_len > 200 {
        errors.push(FieldError::new("owner", "must be 1–200 characters"));
    } else if req.owner.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "owner",
            "must not contain control characters",
        ));
    }
    let profile = req.profile.unwrap_or_else(|| "jira".to_string());
    let profile_scopes = state
        .config
        .profiles
        .get(&profile)
        .map(|p| p.scopes.clone());
    if profile_scopes.is_none() {
        let known: Vec<&str> = state.config.profiles.keys().map(String::as_str).collect();
        errors.push(FieldError::new(
            "profile",
            format!("unknown profile; configured: {}", known.join(", ")),
        ));
    }
    if let Some(return_to) = &req.return_to {
        if let Err(message) = check_return_to(return_to, &app.return_origins) {
            errors.push(FieldError::new("return_to", message));
        }
    }
    let mut scopes = match req.scopes {
        Some(list) => {
            if list
                .iter()
                .any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                errors.push(FieldError::new(
                    "scopes",
                    "each scope must be a non-empty word without spaces",
                ));
            }
            list
        }
        None => profile_scopes.unwrap_or_default(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    for required in REQUIRED_SCOPES {
        if !scopes.iter().any(|s| s == required) {
            scopes.push(required.to_string());
        }
    }
    scopes.dedup();
    Ok(NewConnectSession {
        app_id: app.id.clone(),
        owner: req.owner.into(),
        profile,
        return_to: req.return_to,
        scopes,
    })
}

/// `return_to` must be an absolute http(s) URL whose origin the app allowed:
/// anything else would make atlasgate an open redirect.
fn check_return_to(return_to: &str, allowed: &[ReturnOrigin]) -> Result<(), String> {
    let url = url::Url::parse(return_to).map_err(|_| "must be an absolute URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let origin = url.origin().ascii_serialization();
    let ok = allowed.iter().any(|a| a.matches(&url));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "origin {origin} is not one of the app's allowed return origins"
        ))
    }
}

/// Store a new session and answer with its link.
pub async fn create_session(
    state: &AppState,
    new: &NewConnectSession,
) -> Result<ConnectSessionResponse, ApiError> {
    let created = atlasgate_core::connect::create_session(&state.store, &state.config, new).await?;
    Ok(ConnectSessionResponse {
        id: created.id,
        connect_url: created.connect_url,
        expires_at: crate::connections::rfc3339(created.expires_at),
    })
}

/// Create a connect session
///
/// A one-use link, valid 30 minutes, that takes a person through Atlassian's
/// consent (and the site picker when needed) and back to `return_to`.
#[utoipa::path(
    post,
    path = "/v1/connect-sessions",
    tag = "connect",
    request_body = ConnectSessionRequest,
    responses(
        (status = 201, description = "Session created", body = ConnectSessionResponse),
        (status = 401, description = "Missing or wrong app key", body = crate::error::Problem),
        (status = 422, description = "Invalid field(s)", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn create_connect_session(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Json(req): Json<ConnectSessionRequest>,
) -> Result<(StatusCode, Json<ConnectSessionResponse>), ApiError> {
    let new = parse_request(&state, &app, req)?;
    let created = create_session(&state, &new).await?;
    tracing::info!(app_id = %new.app_id, profile = %new.profile, "connect session created");
    Ok((StatusCode::CREATED, Json(created)))
}

#[cfg(test)]
mod tests {
    use super::check_return_to;

    #[test]
    fn return_to_must_match_an_allowed_origin() {
        let allowed: Vec<_> = ["https://app.example.com", "http://127.0.0.1:3000"]
            .iter()
            .filter_map(|o| crate::apps::types::ReturnOrigin::parse(o).ok())
            .collect();
        assert_eq!(allowed.len(), 2);
        assert!(check_return_to("https://app.example.com/done?x=1", &allowed).is_ok());
        assert!(check_return_to("http://127.0.0.1:3000/cb", &allowed).is_ok());
        assert!(check_return_to("https://app.example.com.evil.com/", &allowed).is_err());
        assert!(check_return_to("https://evil.com/?https://app.example.com", &allowed).is_err());
        assert!(check_return_to("javascript:alert(1)", &allowed).is_err());
        assert!(check_return_to("//app.example.com/x", &allowed).is_err());
        assert!(check_return_to("https://user@app.example.com/", &allowed).is_err());
    }
}
