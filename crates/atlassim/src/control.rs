//! The control plane under `/__sim/` (JSON in and out), except the issue
//! routes, which live with the gateway. Routes and fields are a contract
//! (docs/design.md §9): tests and users script the simulator with them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{ConsentDecision, MintError, MintTokenRequest, MintedTokens};
use crate::faults::Fault;
use crate::model::{AppState, SimState, Timestamp, World};
use crate::stats::SimStats;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/__sim/state", get(get_state))
        .route("/__sim/consent", post(create_consent))
        .route("/__sim/clock/advance", post(create_clock_advance))
        .route(
            "/__sim/faults",
            post(create_fault).get(list_faults).delete(delete_faults),
        )
        .route("/__sim/grants/revoke", post(create_grant_revocation))
        .route("/__sim/stats", get(get_stats))
        .route("/__sim/tokens", post(create_tokens))
        .route("/__sim/clients/redirect-uris", post(create_redirect_uri))
        .route("/__sim/projects/hide", post(create_project_hiding))
}

/// `POST /__sim/projects/hide`: one account may no longer browse a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HideProjectRequest {
    pub cloud_id: String,
    /// The project's key or id.
    pub project: String,
    pub account_id: String,
}

/// Hide the project from the account; `false` when site or project is unknown.
pub fn hide_project(state: &SimState, req: &HideProjectRequest) -> bool {
    let mut world = state.world();
    let Some(site) = world.site_mut(&req.cloud_id) else {
        return false;
    };
    let Some(project) = site
        .projects
        .iter_mut()
        .find(|p| p.key.eq_ignore_ascii_case(&req.project) || p.id.to_string() == req.project)
    else {
        return false;
    };
    if project.visible_to(&req.account_id) {
        project.hidden_from.push(req.account_id.clone());
    }
    true
}

async fn create_project_hiding(
    State(state): State<AppState>,
    Json(req): Json<HideProjectRequest>,
) -> Response {
    if hide_project(&state, &req) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "unknown site or project" })),
        )
            .into_response()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown client_id")]
    UnknownClient,
    #[error("unknown account_id")]
    UnknownAccount,
    #[error(transparent)]
    Mint(#[from] MintError),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        match self {
            ControlError::Mint(e) => e.into_response(),
            e => (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response(),
        }
    }
}

#[derive(Serialize)]
pub struct StateSnapshot {
    pub now: Timestamp,
    pub clients: Vec<ClientSnapshot>,
    pub users: Vec<UserSnapshot>,
    pub sites: Vec<SiteSnapshot>,
}

#[derive(Serialize)]
pub struct ClientSnapshot {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Serialize)]
pub struct UserSnapshot {
    pub account_id: String,
    pub email: String,
    pub name: String,
}

#[derive(Serialize)]
pub struct FieldSnapshot {
    pub id: String,
    pub name: String,
}

#[derive(Serialize)]
pub struct ProjectSnapshot {
    pub key: String,
    pub id: u64,
    pub issue_count: usize,
}

#[derive(Serialize)]
pub struct SiteSnapshot {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    pub products: Vec<&'static str>,
    pub story_points_field: FieldSnapshot,
    pub projects: Vec<ProjectSnapshot>,
    /// Extra: board and sprint ids, space keys, and a digest of every issue
    /// (key, rank, status, sprint, timestamps) to compare seeds cheaply.
    pub boards: Vec<u64>,
    pub sprints: Vec<u64>,
    pub spaces: Vec<String>,
    pub page_count: usize,
    pub issues_digest: String,
}

pub fn snapshot(now: Timestamp, world: &World) -> StateSnapshot {
    let sites = world
        .sites
        .iter()
        .map(|site| {
            let mut counts = std::collections::HashMap::<u64, usize>::new();
            let mut digest = Sha256::new();
            for issue in site.issues.values() {
                *counts.entry(issue.project_id).or_default() += 1;
                digest.update(format!(
                    "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{}|{}\n",
                    issue.id,
                    issue.key,
                    issue.summary,
                    issue.rank,
                    issue.status.name,
                    issue.sprint_id,
                    issue.story_points,
                    issue.assignee,
                    issue.issue_type.name,
                    issue.created.to_rfc3339(),
                    issue.updated.to_rfc3339()
                ));
            }
            SiteSnapshot {
                cloud_id: site.cloud_id.clone(),
                name: site.name.clone(),
                url: site.url.clone(),
                products: site.products.iter().map(|p| p.as_str()).collect(),
                story_points_field: FieldSnapshot {
                    id: site.story_points_field.id.clone(),
                    name: site.story_points_field.name.clone(),
                },
                projects: site
                    .projects
                    .iter()
                    .map(|p| ProjectSnapshot {
                        key: p.key.clone(),
                        id: p.id,
                        issue_count: counts.get(&p.id).copied().unwrap_or(0),
                    })
                    .collect(),
                boards: site.boards.iter().map(|b| b.id).collect(),
                sprints: site.sprints.iter().map(|s| s.id).collect(),
                spaces: site.spaces.iter().map(|s| s.key.clone()).collect(),
                page_count: site.pages.len(),
                issues_digest: hex::encode(digest.finalize()),
            }
        })
        .collect();
    StateSnapshot {
        now,
        clients: world
            .clients
            .iter()
            .map(|c| ClientSnapshot {
                client_id: c.client_id.clone(),
                redirect_uris: c.redirect_uris.clone(),
                scopes: c.scopes.clone(),
            })
            .collect(),
        users: world
            .users
            .iter()
            .map(|u| UserSnapshot {
                account_id: u.account_id.clone(),
                email: u.email.clone(),
                name: u.name.clone(),
            })
            .collect(),
        sites,
    }
}

pub fn snapshot_json(state: &SimState) -> serde_json::Value {
    let now = state.clock.now();
    let world = state.world();
    serde_json::to_value(snapshot(now, &world)).unwrap_or(serde_json::Value::Null)
}

async fn get_state(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(snapshot_json(&state))
}

async fn create_consent(
    State(state): State<AppState>,
    Json(decision): Json<ConsentDecision>,
) -> Json<ConsentDecision> {
    state.world().auth.next_consent = Some(decision.clone());
    Json(decision)
}

#[derive(Deserialize)]
struct ClockAdvanceRequest {
    seconds: i64,
}

#[derive(Serialize)]
struct ClockAdvanceResponse {
    now: Timestamp,
}

async fn create_clock_advance(
    State(state): State<AppState>,
    Json(req): Json<ClockAdvanceRequest>,
) -> Json<ClockAdvanceResponse> {
    Json(ClockAdvanceResponse {
        now: state.clock.advance(req.seconds),
    })
}

#[derive(Serialize)]
struct FaultList {
    faults: Vec<Fault>,
}

async fn create_fault(
    State(state): State<AppState>,
    Json(fault): Json<Fault>,
) -> (StatusCode, Json<FaultList>) {
    state.faults.add(fault);
    (
        StatusCode::CREATED,
        Json(FaultList {
            faults: state.faults.list(),
        }),
    )
}

async fn list_faults(State(state): State<AppState>) -> Json<FaultList> {
    Json(FaultList {
        faults: state.faults.list(),
    })
}

async fn delete_faults(State(state): State<AppState>) -> Json<FaultList> {
    state.faults.clear();
    Json(FaultList { faults: Vec::new() })
}

#[derive(Deserialize)]
struct GrantRevokeRequest {
    account_id: String,
}

#[derive(Serialize)]
struct GrantRevokeResponse {
    revoked_families: u64,
}

async fn create_grant_revocation(
    State(state): State<AppState>,
    Json(req): Json<GrantRevokeRequest>,
) -> Result<Json<GrantRevokeResponse>, ControlError> {
    let mut world = state.world();
    if world.user(&req.account_id).is_none() {
        return Err(ControlError::UnknownAccount);
    }
    let revoked_families = world.auth.revoke_account(&req.account_id);
    Ok(Json(GrantRevokeResponse { revoked_families }))
}

async fn get_stats(State(state): State<AppState>) -> Json<SimStats> {
    Json(SimStats::from_stats(&state.world().stats))
}

async fn create_tokens(
    State(state): State<AppState>,
    Json(req): Json<MintTokenRequest>,
) -> Result<Json<MintedTokens>, ControlError> {
    Ok(Json(crate::auth::mint(&state, req)?))
}

#[derive(Deserialize)]
struct RedirectUriRequest {
    client_id: String,
    uri: String,
}

#[derive(Serialize)]
struct RedirectUriResponse {
    client_id: String,
    redirect_uris: Vec<String>,
}

/// Register one more callback URL (an app's real port is known only at run time).
pub fn add_redirect_uri(state: &SimState, client_id: &str, uri: &str) -> Option<Vec<String>> {
    let mut world = state.world();
    let client = world
        .clients
        .iter_mut()
        .find(|c| c.client_id == client_id)?;
    if !client.redirect_uris.iter().any(|u| u == uri) {
        client.redirect_uris.push(uri.to_string());
    }
    Some(client.redirect_uris.clone())
}

async fn create_redirect_uri(
    State(state): State<AppState>,
    Json(req): Json<RedirectUriRequest>,
) -> Result<Json<RedirectUriResponse>, ControlError> {
    let redirect_uris =
        add_redirect_uri(&state, &req.client_id, &req.uri).ok_or(ControlError::UnknownClient)?;
    Ok(Json(RedirectUriResponse {
        client_id: req.client_id,
        redirect_uris,
    }))
}
