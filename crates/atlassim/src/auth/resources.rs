//! `GET /oauth/token/accessible-resources` and `GET /me` on `api.atlassian.com`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Serialize;

use super::store::{product_scopes, AccessInfo};
use super::ApiAuthError;
use crate::model::{AppState, SimState, World};

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn authenticate(
    state: &SimState,
    world: &World,
    headers: &HeaderMap,
) -> Result<AccessInfo, ApiAuthError> {
    let token = bearer(headers).ok_or(ApiAuthError::Unauthorized)?;
    super::check_access_token(state, world, token).map_err(|_| ApiAuthError::Unauthorized)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessibleResource {
    id: String,
    name: String,
    url: String,
    scopes: Vec<String>,
    avatar_url: String,
}

/// One entry per product per site the grant covers: a site with Jira and
/// Confluence appears twice with the same `id`, told apart by `scopes`.
/// A product none of whose scopes were granted is left out.
pub(crate) async fn list_accessible_resources(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<AccessibleResource>>, ApiAuthError> {
    let world = state.world();
    let access = authenticate(&state, &world, &headers)?;
    let mut out = Vec::new();
    for cloud_id in &access.cloud_ids {
        let Some(site) = world.site(cloud_id) else {
            continue;
        };
        for product in &site.products {
            let scopes = product_scopes(*product, &access.scopes);
            if scopes.is_empty() {
                continue;
            }
            out.push(AccessibleResource {
                id: site.cloud_id.clone(),
                name: site.name.clone(),
                url: site.url.clone(),
                scopes,
                avatar_url: site.avatar_url.clone(),
            });
        }
    }
    Ok(Json(out))
}

#[derive(Serialize)]
pub(crate) struct ExtendedProfile {
    job_title: String,
    organization: String,
    department: String,
    location: String,
}

/// The documented `/me` shape.
#[derive(Serialize)]
pub(crate) struct Me {
    account_type: &'static str,
    account_id: String,
    email: String,
    name: String,
    picture: String,
    account_status: &'static str,
    nickname: String,
    zoneinfo: String,
    locale: &'static str,
    extended_profile: ExtendedProfile,
}

pub(crate) async fn get_me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiAuthError> {
    let world = state.world();
    let access = authenticate(&state, &world, &headers)?;
    if !access.scopes.iter().any(|s| s == "read:me") {
        return Err(ApiAuthError::ScopeMismatch);
    }
    let user = world
        .user(&access.account_id)
        .ok_or(ApiAuthError::Unauthorized)?;
    Ok(Json(Me {
        account_type: "atlassian",
        account_id: user.account_id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        picture: format!(
            "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{}/128",
            user.account_id
        ),
        account_status: "active",
        nickname: user.nickname.clone(),
        zoneinfo: user.zoneinfo.clone(),
        locale: "en-US",
        extended_profile: ExtendedProfile {
            job_title: "Engineer".into(),
            organization: user.email.clone(),
            department: "Engineering".into(),
            location: "Remote".into(),
        },
    }))
}
