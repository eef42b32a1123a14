//! `GET /admin/api/audit` (docs/design.md §14): the audit trail, newest first.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::rfc3339;
use super::Admin;
use crate::audit::kind;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::store::audit::{self as rows, AuditFilter, AuditRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// App id or name (a deleted app's id still finds its records).
    pub app: Option<String>,
    /// Connection id.
    pub connection: Option<String>,
    /// One of the kinds of docs/design.md §14, e.g. `key.revoked`.
    #[param(value_type = Option<crate::schema::AuditKind>, inline)]
    pub kind: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^\+?0*[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// RFC 3339; for `token.served`, the start of its minute.
    pub at: String,
    pub kind: String,
    pub app_id: Option<String>,
    pub connection_id: Option<String>,
    pub key_id: Option<String>,
    pub client_ip: Option<String>,
    /// Never a secret. `token.served`: `{count}`; actions: `{via}` (`api`,
    /// `dashboard`, `cli`, `system`) and what changed.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<&AuditRow> for AuditRecord {
    fn from(r: &AuditRow) -> Self {
        AuditRecord {
            at: rfc3339(r.at),
            kind: r.kind.clone(),
            app_id: r.app_id.clone(),
            connection_id: r.connection_id.clone().map(String::from),
            key_id: r.key_id.clone(),
            client_ip: r.client_ip.clone(),
            detail: r.detail.clone(),
        }
    }
}

/// The query as a filter, every invalid parameter at once.
async fn filter_of(state: &AppState, q: &AuditQueryParams) -> Result<(AuditFilter, i64), ApiError> {
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        errors.push(crate::error::FieldError::new("limit", "must be 1–200"));
    }
    if let Some(k) = &q.kind {
        if !kind::ALL.contains(&k.as_str()) {
            errors.push(crate::error::FieldError::new(
                "kind",
                format!("must be one of {}", kind::ALL.join(", ")),
            ));
        }
    }
    let before_seq = match &q.cursor {
        None => None,
        Some(c) => match c.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push(crate::error::FieldError::new(
                    "cursor",
                    "is not a cursor from this list",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let app_id = match &q.app {
        None => None,
        Some(a) => match crate::apps::lifecycle::resolve(&state.store, a).await {
            Ok(app) => Some(app.id),
            Err(atlasgate_core::Error::NotFound) => Some(a.clone()),
            Err(e) => return Err(e.into()),
        },
    };
    Ok((
        AuditFilter {
            app_id,
            connection_id: q.connection.clone().map(Into::into),
            kind: q.kind.clone(),
            before_seq,
        },
        limit,
    ))
}

/// The audit trail
///
/// Append-only records, newest first. `token.served` is aggregated: at most
/// one record per connection, key, minute and atlasgate process, written
/// once the minute is over.
#[utoipa::path(get, path = "/admin/api/audit", tag = "admin",
    security(("admin_token" = [])),
    params(AuditQueryParams),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Admin routes are off", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_audit(
    _admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<AuditQueryParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let (filter, limit) = filter_of(&state, &q).await?;
    let page = rows::page(state.store.pool(), &filter, limit).await?;
    Ok(Json(AuditPage {
        next_cursor: if page.more {
            page.items.last().map(|r| r.seq.to_string())
        } else {
            None
        },
        items: page.items.iter().map(AuditRecord::from).collect(),
    }))
}
