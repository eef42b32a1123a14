//! `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::vault::Aad;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_healthz))
        .routes(routes!(get_readyz))
        .routes(routes!(get_metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = HealthResponse)))]
pub async fn get_healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `database`, `migrations`, `encryption_key`.
    pub checks: BTreeMap<String, CheckResult>,
    /// Names of the failing checks.
    pub failing: Vec<String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Database reachable, migrations current, encryption key loaded.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = ReadyResponse),
        (status = 503, description = "A check failed; `failing` names it", body = ReadyResponse),
    ))]
pub async fn get_readyz(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let db = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => CheckResult {
            ok: true,
            detail: None,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            CheckResult {
                ok: false,
                detail: Some("database unreachable".into()),
            }
        }
        Err(_) => CheckResult {
            ok: false,
            detail: Some("database did not answer in time".into()),
        },
    };
    let db_ok = db.ok;
    checks.insert("database".to_string(), db);
    let migrations = if !db_ok {
        CheckResult {
            ok: false,
            detail: Some("database unreachable".into()),
        }
    } else {
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.pending_migrations()).await {
            Ok(Ok(p)) if p.is_empty() => CheckResult {
                ok: true,
                detail: None,
            },
            Ok(Ok(p)) => CheckResult {
                ok: false,
                detail: Some(format!(
                    "{} migration(s) pending; run `atlasgate migrate`",
                    p.len()
                )),
            },
            _ => CheckResult {
                ok: false,
                detail: Some("cannot read migration state".into()),
            },
        }
    };
    checks.insert("migrations".to_string(), migrations);
    // A real round trip proves the key is loaded and usable.
    let aad = Aad::new("readyz", "probe", "0");
    let key_ok = state
        .cipher
        .encrypt(b"probe", &aad)
        .and_then(|ct| state.cipher.decrypt(&ct, &aad))
        .map(|pt| &pt[..] == b"probe")
        .unwrap_or(false);
    checks.insert(
        "encryption_key".to_string(),
        CheckResult {
            ok: key_ok,
            detail: Some(format!("key `{}`", state.cipher.primary_key_id()))
                .filter(|_| key_ok)
                .or_else(|| (!key_ok).then(|| "encryption key unusable".to_string())),
        },
    );
    let failing: Vec<String> = checks
        .iter()
        .filter(|(_, c)| !c.ok)
        .map(|(k, _)| k.clone())
        .collect();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ReadyResponse {
        status: if failing.is_empty() {
            "ready"
        } else {
            "not_ready"
        }
        .into(),
        checks,
        failing,
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics (OpenMetrics text format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String)))]
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
