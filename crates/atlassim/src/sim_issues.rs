//! The control plane's issue routes (docs/design.md §9): `POST /__sim/issues`,
//! `PATCH|DELETE /__sim/issues/{cloud_id}/{key}`. They change issues exactly
//! as the REST API does (same validation, changelog, `updated`, webhooks),
//! and may also set `status`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::gateway::Runtime;
use crate::jira::service::{self, EditMode};
use crate::jira::{delete_and_fire, edit_and_fire};
use crate::model::AppState;
use crate::webhooks::{self, IssueEvent, IssueEventKind};

pub fn router() -> Router<AppState> {
    Router::new().route("/__sim/issues", post(create)).route(
        "/__sim/issues/{cloud_id}/{key}",
        patch(update).delete(remove),
    )
}

#[derive(Debug, Deserialize)]
pub struct CreateIssue {
    cloud_id: String,
    project: String,
    #[serde(default)]
    fields: Map<String, Value>,
    /// Who the change is attributed to (default: the project lead).
    account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateIssue {
    #[serde(default)]
    fields: Map<String, Value>,
    account_id: Option<String>,
}

const SIM: EditMode = EditMode {
    v2: false,
    sim: true,
};

fn default_user(state: &AppState, cloud_id: &str) -> String {
    let world = state.world();
    world
        .site(cloud_id)
        .and_then(|s| s.users.first().cloned())
        .or_else(|| world.users.first().map(|u| u.account_id.clone()))
        .unwrap_or_default()
}

async fn create(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    Json(req): Json<CreateIssue>,
) -> Result<Response, ApiError> {
    let user = req
        .account_id
        .clone()
        .unwrap_or_else(|| default_user(&state, &req.cloud_id));
    let mut fields = req.fields.clone();
    fields.insert("project".into(), json!({"key": req.project}));
    let issue = {
        let mut world = state.world();
        let users = world.users.clone();
        let now = state.clock.now();
        let site = world
            .site_mut(&req.cloud_id)
            .ok_or(ApiError::SiteNotFound)?;
        service::create_issue(site, &users, &fields, &user, now, SIM)?
    };
    webhooks::fire(
        &state,
        &rt,
        IssueEvent {
            cloud_id: req.cloud_id.clone(),
            kind: IssueEventKind::Created,
            issue: issue.clone(),
            changelog: vec![],
            user,
        },
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": issue.key, "id": issue.id.to_string()})),
    )
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    Path((cloud_id, key)): Path<(String, String)>,
    Json(req): Json<UpdateIssue>,
) -> Result<Json<Value>, ApiError> {
    let user = req
        .account_id
        .clone()
        .unwrap_or_else(|| default_user(&state, &cloud_id));
    let issue = edit_and_fire(
        &state,
        &rt,
        &cloud_id,
        &key,
        &req.fields,
        &Map::new(),
        SIM,
        &user,
    )?;
    Ok(Json(
        json!({"key": issue.key, "id": issue.id.to_string(), "updated": crate::jira::render::jira_time(issue.updated)}),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    Path((cloud_id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = default_user(&state, &cloud_id);
    delete_and_fire(&state, &rt, &cloud_id, &key, &user)?;
    Ok(StatusCode::NO_CONTENT)
}
