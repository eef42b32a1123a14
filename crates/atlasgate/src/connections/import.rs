//! `POST /v1/connections/import` (docs/design.md §18, docs/importing.md):
//! an app hands over a grant it already holds. The work is
//! `atlasgate_core::import`; this only translates.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::apps::AuthenticatedApp;
use crate::error::ApiError;
use crate::state::AppState;
use atlasgate_core::connections::ConnectionView;
use atlasgate_core::import::{self, ImportInput, ImportOutcome};

/// Import an existing grant
///
/// atlasgate uses the given access token while it has more than
/// `ATLASGATE_REFRESH_MARGIN` left, else refreshes once (Atlassian rotates
/// the refresh token: the old store's copy stops working), then reads `/me`
/// and accessible-resources and selects `cloud_id` or the grant's only site.
/// 201 for a new connection; 200 with the same id when this (owner, profile)
/// exists (its grant replaced, or unchanged when the same refresh token was
/// imported before). `connection.created` is emitted for a new or replaced
/// grant. Nothing is stored on any error.
#[utoipa::path(
    post,
    path = "/v1/connections/import",
    tag = "connections",
    request_body = crate::schema::ImportConnectionRequest,
    responses(
        (status = 201, description = "Imported: a new connection", body = crate::schema::ConnectionView),
        (status = 200, description = "This (owner, profile) existed: same id, grant replaced or unchanged", body = crate::schema::ConnectionView),
        (status = 401, description = "Missing or wrong app key", body = crate::error::Problem),
        (status = 409, description = "`site-required`: several sites and no `cloud_id`; `sites` lists them", body = crate::error::Problem),
        (status = 422, description = "Invalid field, or Atlassian refused the refresh token (`refresh_token`)", body = crate::error::Problem),
        (status = 502, description = "Atlassian rejected the request or is unreachable", body = crate::error::Problem),
        (status = 503, description = "Atlassian could not refresh right now; see Retry-After", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn import_connection(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Json(input): Json<ImportInput>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let done = import::import(&state, &app.id, input).await?;
    let status = match done.outcome {
        ImportOutcome::Created => StatusCode::CREATED,
        ImportOutcome::Replaced | ImportOutcome::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(done.connection)))
}
