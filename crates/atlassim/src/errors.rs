//! Every error the gateway answers, mapped to Atlassian's bodies in one place:
//! the gateway's own 401s, Jira's `ErrorCollection`, Confluence v2's
//! `{"errors":[…]}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::jql::JqlError;

/// The 410 body of the removed `/rest/api/{2,3}/search` (observed verbatim;
/// see docs/atlassian-behaviour.md §3).
pub const SEARCH_REMOVED: &str = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, unknown, expired or revoked bearer token (gateway).
    #[error("unauthorized")]
    Unauthorized,
    /// The token lacks every scope alternative of the operation (gateway).
    #[error("scope does not match")]
    ScopeMismatch,
    /// The cloud id is unknown, lacks the product, or is not in the grant.
    /// Guess: Atlassian's exact body here is undocumented.
    #[error("site unavailable")]
    SiteNotFound,
    /// Jira's `ErrorCollection`.
    #[error("jira error {status}")]
    Jira {
        status: StatusCode,
        messages: Vec<String>,
        errors: BTreeMap<String, String>,
    },
    /// A JQL problem: 400 with `warningMessages`, as `/search/jql` answers.
    #[error("jql: {0}")]
    Jql(#[from] JqlError),
    /// The removed search API.
    #[error("search removed")]
    SearchRemoved,
    /// Confluence v2's error list.
    #[error("confluence error {status}")]
    Confluence {
        status: StatusCode,
        title: String,
        detail: Option<String>,
    },
}

impl ApiError {
    pub fn jira(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Jira {
            status,
            messages: vec![message.into()],
            errors: BTreeMap::new(),
        }
    }

    pub fn jira_field(
        status: StatusCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.into(), message.into());
        ApiError::Jira {
            status,
            messages: vec![],
            errors,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::jira(StatusCode::BAD_REQUEST, message)
    }

    /// Jira's wording for an issue that is missing or not visible.
    pub fn issue_not_found() -> Self {
        Self::jira(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        )
    }

    pub fn confluence(status: StatusCode, detail: Option<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        ApiError::Confluence {
            status,
            title,
            detail,
        }
    }
}

/// The gateway's own 401 body.
pub fn gateway_401(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 401, "message": message})),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => gateway_401("Unauthorized"),
            ApiError::ScopeMismatch => gateway_401("Unauthorized; scope does not match"),
            ApiError::SiteNotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"errorMessages": ["Site temporarily unavailable"], "errors": {}})),
            )
                .into_response(),
            ApiError::Jira {
                status,
                messages,
                errors,
            } => (
                status,
                Json(json!({"errorMessages": messages, "errors": errors})),
            )
                .into_response(),
            ApiError::Jql(e) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"errorMessages": e.messages, "errors": {}, "warningMessages": []})),
            )
                .into_response(),
            ApiError::SearchRemoved => (
                StatusCode::GONE,
                Json(json!({"errorMessages": [SEARCH_REMOVED], "errors": {}})),
            )
                .into_response(),
            ApiError::Confluence {
                status,
                title,
                detail,
            } => {
                let code = title.to_ascii_uppercase().replace(' ', "_");
                (
                    status,
                    Json(json!({"errors": [{"status": status.as_u16(), "code": code, "title": title, "detail": detail}]})),
                )
                    .into_response()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
