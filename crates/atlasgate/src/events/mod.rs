//! Events out (docs/design.md §6): the outbox (`events`, written in the same
//! transaction as the change it announces), its delivery worker, Standard
//! Webhooks signing, and `GET /v1/events`.

pub mod receiver;

pub use atlasgate_core::events::*;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apps::AuthenticatedApp;
use crate::connections::rfc3339;
use crate::error::ApiError;
use crate::ids::ConnectionId;
use crate::state::AppState;
use crate::store::events as rows;
use crate::store::events::DeliveryState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEventsQueryParams {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (older events follow).
    #[param(pattern = r"^[+-]?[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Only events of this connection.
    pub connection_id: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<crate::schema::EventType>, inline)]
    pub event_type: Option<String>,
}

/// One event and the state of its delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub connection_id: Option<String>,
    pub created_at: String,
    /// `pending` | `delivered` | `failed` (gave up) | `skipped` (no webhook URL).
    pub delivery_state: String,
    pub attempts: i64,
    pub last_attempt_at: Option<String>,
    /// HTTP status of the last attempt, if one was answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    /// When the next attempt is due (pending events).
    pub next_attempt_at: Option<String>,
    /// The event's payload, as delivered in `data`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub items: Vec<EventView>,
    pub next_cursor: Option<String>,
}

/// List the app's events
///
/// The app's recent events, newest first, with their delivery state, number
/// of attempts and last error.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(ListEventsQueryParams),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 401, description = "Missing or wrong app key", body = crate::error::Problem),
        (status = 422, description = "Invalid filter", body = crate::error::Problem),
    ),
    security(("app_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    app: AuthenticatedApp,
    Query(q): Query<ListEventsQueryParams>,
) -> Result<Json<EventList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    let before = match &q.cursor {
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| ApiError::validation("cursor", "not a cursor from this API"))?,
        None => i64::MAX,
    };
    if let Some(t) = &q.event_type {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::validation("type", "unknown event type"));
        }
    }
    let connection_id = q.connection_id.clone().map(ConnectionId::from);
    let page = rows::list_for_app(
        state.store.pool(),
        &app.id,
        before,
        connection_id.as_ref(),
        q.event_type.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = page
        .more
        .then(|| page.items.last().map(|r| r.seq.to_string()))
        .flatten();
    let found = page.items;
    let items = found
        .into_iter()
        .map(|r| EventView {
            id: r.id,
            event_type: r.event_type,
            connection_id: r.connection_id.map(String::from),
            created_at: rfc3339(r.created_at),
            next_attempt_at: (r.delivery_state == DeliveryState::Pending)
                .then(|| rfc3339(r.next_attempt_at)),
            delivery_state: r.delivery_state.as_str().to_string(),
            attempts: r.attempts,
            last_attempt_at: r.last_attempt_at.map(rfc3339),
            last_status: r.last_status,
            last_error: r.last_error,
            delivered_at: r.delivered_at.map(rfc3339),
            data: r.payload,
        })
        .collect();
    Ok(Json(EventList { items, next_cursor }))
}
