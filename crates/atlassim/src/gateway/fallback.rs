//! What the gateway answers for a request no route serves: the bearer
//! token first (as for every gateway call), then the site, then
//!
//! - an operation that is in Atlassian's specs but not emulated: 501 with
//!   an `ErrorCollection` naming the operation (so a test author knows at
//!   once what is missing; README lists what is emulated);
//! - anything else: Jira's 404 `ErrorCollection`.
//!
//! The operations come from `data/spec_operations.json` (every method and
//! path of the three specs; the spec test fails when it drifts).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::errors::ApiError;
use crate::model::{AppState, Product};

pub const SPEC_OPERATIONS_JSON: &str = include_str!("../../data/spec_operations.json");

/// One operation of a spec: (method, api, path template, operationId).
pub type SpecOperation = (String, String, String, String);

pub fn spec_operations() -> &'static [SpecOperation] {
    static OPS: OnceLock<Vec<SpecOperation>> = OnceLock::new();
    OPS.get_or_init(|| serde_json::from_str(SPEC_OPERATIONS_JSON).unwrap_or_default())
}

/// Segment-wise match; `{x}` stands for one segment. Returns how many
/// segments matched literally (more is a better match).
fn template_score(template: &str, path: &str) -> Option<usize> {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    for (a, b) in t.iter().zip(&p) {
        if a.starts_with('{') && a.ends_with('}') {
            if b.is_empty() {
                return None;
            }
        } else if a == b {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// The spec operation `method path` (path below `/ex/{product}/{cloudId}`) is, if any.
pub fn find_operation(
    product: Product,
    method: &str,
    path: &str,
) -> Option<&'static SpecOperation> {
    let candidates: Vec<(&str, String)> = match product {
        Product::Jira => {
            let mut p = path.to_string();
            for v in ["/rest/api/2/", "/rest/api/latest/"] {
                if let Some(rest) = path.strip_prefix(v) {
                    p = format!("/rest/api/3/{rest}");
                }
            }
            vec![("jira", p.clone()), ("agile", p)]
        }
        Product::Confluence => ["/wiki/api/v2", "/api/v2"]
            .iter()
            .filter_map(|pre| path.strip_prefix(pre))
            .map(|rest| ("confluence", rest.to_string()))
            .collect(),
    };
    spec_operations()
        .iter()
        .filter(|(m, ..)| m.eq_ignore_ascii_case(method))
        .filter_map(|op| {
            candidates
                .iter()
                .filter(|(api, _)| *api == op.1)
                .filter_map(|(_, p)| template_score(&op.2, p))
                .max()
                .map(|score| (score, op))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, op)| op)
}

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let parsed = ["jira", "confluence"].iter().find_map(|product| {
        let rest = path.strip_prefix(&format!("/ex/{product}/"))?;
        let (cloud_id, below) = rest.split_once('/').unwrap_or((rest, ""));
        let product = if *product == "jira" {
            Product::Jira
        } else {
            Product::Confluence
        };
        Some((product, cloud_id.to_string(), format!("/{below}")))
    });
    let Some((product, cloud_id, below)) = parsed else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(token) = super::bearer(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    {
        let world = state.world();
        let Ok(access) = crate::auth::check_access_token(&state, &world, token) else {
            return ApiError::Unauthorized.into_response();
        };
        let site_ok = world.site(&cloud_id).is_some_and(|s| s.has(product));
        if !site_ok || !access.cloud_ids.contains(&cloud_id) {
            return ApiError::SiteNotFound.into_response();
        }
    }
    match (find_operation(product, method.as_str(), &below), product) {
        (Some((m, _, template, op_id)), Product::Jira) => ApiError::jira(
            StatusCode::NOT_IMPLEMENTED,
            format!("atlassim does not emulate the operation {op_id} ({m} {template})."),
        )
        .into_response(),
        (Some((m, _, template, op_id)), Product::Confluence) => ApiError::confluence(
            StatusCode::NOT_IMPLEMENTED,
            Some(format!(
                "atlassim does not emulate the operation {op_id} ({m} {template})."
            )),
        )
        .into_response(),
        (None, Product::Jira) => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "errorMessages": [format!("No REST resource matches {} {below}.", method.as_str())],
                "errors": {},
            })),
        )
            .into_response(),
        (None, Product::Confluence) => {
            ApiError::confluence(StatusCode::NOT_FOUND, None).into_response()
        }
    }
}
