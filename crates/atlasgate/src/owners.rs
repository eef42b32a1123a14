//! `DELETE /v1/owners/{owner}` (docs/design.md §13): erase a team or user
//! that left — every connection of that owner, of the calling app only.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AuthenticatedApp;
use crate::audit::Actor;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::ids::Owner;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase_owner))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OwnerErased {
    /// Connections (every profile) disconnected and deleted; 0 when the
    /// owner had none (erasing again changes nothing).
    pub connections_erased: u64,
}

/// Erase an owner
///
/// Every connection of `owner` (all profiles) of the calling app is
/// disconnected — its Jira webhooks deleted while its tokens still work —
/// and then deleted with its syncs, synced issues, events and audit
/// records, as are the owner's connect sessions. Afterwards every route for
/// those ids answers 404, and no table holds the owner string (SQLite runs
/// with `secure_delete`; its WAL is checkpointed and truncated). Other apps'
/// connections of the same owner string are untouched.
#[utoipa::path(
    delete,
    path = "/v1/owners/{owner}",
    tag = "connections",
    params(("owner" = String, Path, description = "The owner given to POST /v1/connect-sessions", min_length = 1, max_length = 200)),
    responses(
        (status = 200, description = "Erased", body = OwnerErased),
        (status = 401, description = "Missing or wrong app key", body = crate::error::Problem),
        (status = 422, description = "Not a possible owner", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn erase_owner(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    ClientAddr(ip): ClientAddr,
    Path(owner): Path<String>,
) -> Result<Json<OwnerErased>, ApiError> {
    let len = owner.chars().count();
    if len == 0 || len > 200 {
        return Err(ApiError::validation("owner", "must be 1–200 characters"));
    }
    let owner = Owner::from(owner);
    let erased =
        crate::apps::lifecycle::erase_owner(&state.core, &app.id, &owner, &Actor::api(ip)).await?;
    Ok(Json(OwnerErased {
        connections_erased: erased,
    }))
}
