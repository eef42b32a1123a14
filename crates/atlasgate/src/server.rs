//! The HTTP server: one router merged from every feature module, the
//! cross-cutting layers (request id, logs, metrics, problem+json, limits), and
//! [`Application`], which binds, migrates and serves until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::client_addr::{self, ClientAddr};
use crate::config::Config;
use crate::state::AppState;
use crate::store::{Store, StoreError};

pub use crate::request::{
    current_request_id, BODY_LIMIT_BYTES, REQUEST_ID, REQUEST_ID_HEADER, REQUEST_TIMEOUT,
};

/// The documented routes with the ordinary limits (body size, timeout).
/// Feature modules contribute one `router()` each, here and only here.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(crate::health::router())
        .merge(crate::admin::api_router())
        .merge(crate::connect::api_router())
        .merge(crate::connections::router())
        .merge(crate::owners::router())
        .merge(crate::sync::router())
        .merge(crate::webhooks::router())
        .merge(crate::events::router())
        .merge(crate::jira::router())
        .merge(crate::confluence::router())
        .merge(crate::mcp::router())
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Routes that stream (the proxy): no body limit, no overall timeout.
pub fn streaming_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(crate::proxy::router())
}

/// Every documented route (for `/openapi.json` and the snapshot test).
pub fn openapi_router() -> OpenApiRouter<AppState> {
    api_router().merge(streaming_router())
}

/// The documented routes and their document, completed by
/// [`crate::openapi::complete`] (the problems every route of a kind answers).
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut spec) = openapi_router().split_for_parts();
    crate::openapi::complete(&mut spec);
    (api, spec)
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The complete application router with its state.
pub fn router(state: AppState) -> Router {
    let (api, spec) = documented();
    api.merge(crate::admin::pages_router())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(crate::error::not_found)
        .layer(middleware::from_fn_with_state(
            crate::ratelimit::AdminLimits::default(),
            crate::ratelimit::admin,
        ))
        .layer(middleware::from_fn(crate::error::problem_fallback))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// A sane incoming request id is reused; anything else is replaced.
fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    .then(|| s.to_string())
}

/// The path as it may be logged. A connect-session id is a bearer link for
/// 30 minutes (docs/design.md §12), so the segment after `connect` (and any
/// segment that looks like a session id, on a mistyped route too) becomes
/// `{session}`. The query string is never part of it.
pub fn loggable_path(path: &str) -> String {
    let mut after_connect = false;
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| {
            let secret = after_connect
                || seg.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("cs_"))
                || seg
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case("cs%5f"));
            after_connect = seg.eq_ignore_ascii_case("connect");
            if secret && !seg.is_empty() {
                "{session}"
            } else {
                seg
            }
        })
        .collect();
    segments.join("/")
}

/// Assigns the request id (request header, task-local, response header),
/// resolves the client address (a [`ClientAddr`] extension, see
/// `client_addr.rs`) and wraps the request in a span that every log line
/// below it carries. Logs the path with bearer links redacted, never the
/// query string (it may hold OAuth codes or state) and never a header
/// (cookies, tokens). Counts the request by route template, method and
/// status (in this layer rather than one of its own: each `from_fn` layer
/// clones the rest of the stack on every request).
async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        // A v4 UUID from the thread's RNG (`Uuid::new_v4` asks the kernel,
        // a system call per request).
        .unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string()
        });
    let id_header = HeaderValue::from_str(&id).ok();
    if let Some(v) = &id_header {
        req.headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), v.clone());
    }
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client =
            client_addr::resolve(peer.0.ip(), req.headers(), &state.config.trusted_proxies);
        req.extensions_mut().insert(ClientAddr(client));
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        client = %ClientAddr::of(req.extensions()),
    );
    // Both cheap clones (an `Arc<str>`; a method without allocation).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    state.metrics.observe_http(
        route.as_ref().map_or("unmatched", |p| p.as_str()),
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            status = resp.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request finished"
        )
    });
    if let Some(v) = id_header {
        resp.headers_mut().insert(REQUEST_ID_HEADER.clone(), v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn session_links_are_redacted_from_logged_paths() {
        for (path, want) in [
            ("/connect/cs_0123abcd", "/connect/{session}"),
            ("/connect/cs_0123abcd/site", "/connect/{session}/site"),
            ("/CONNECT/whatever", "/CONNECT/{session}"),
            (
                "/prefix/connect/cs_1/site",
                "/prefix/connect/{session}/site",
            ),
            ("/conect/cs_0123abcd", "/conect/{session}"),
            ("/x/cs%5F0123", "/x/{session}"),
            ("/connect/", "/connect/"),
            ("/oauth/callback", "/oauth/callback"),
            ("/v1/connect-sessions", "/v1/connect-sessions"),
            ("/v1/connections/c_1/token", "/v1/connections/c_1/token"),
        ] {
            assert_eq!(loggable_path(path), want, "{path}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A configured, migrated, bound server that is not yet serving.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    router: Router,
}

impl Application {
    /// Bind `config.listen` (port 0 picks a free port), connect and migrate.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        Self::build_with_listener(config, listener).await
    }

    /// Serve on a listener bound by the caller (so a test knows the port
    /// before it starts anything that needs atlasgate's URL).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> Result<Application, StartError> {
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        Self::build_with_store(config, listener, store).await
    }

    /// Like [`build_with_listener`](Self::build_with_listener) with an
    /// already connected and migrated store.
    pub async fn build_with_store(
        config: Config,
        listener: TcpListener,
        store: Store,
    ) -> Result<Application, StartError> {
        let address = listener.local_addr().map_err(StartError::Bind)?;
        let state = AppState::new(config, store)?;
        let router = router(state.clone());
        Ok(Application {
            listener,
            address,
            state,
            router,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until SIGINT or SIGTERM, then finish in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serve until `stop` completes, then finish in-flight requests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let keepalive =
            crate::vault::keepalive::spawn(self.state.store.clone(), self.state.refresher.clone());
        // Sync passes, the Jira webhook inbox and event deliveries.
        let workers = atlasgate_core::workers::spawn_workers(self.state.core.clone());
        // Connect info: the peer address, from which the client address is
        // resolved (`client_addr.rs`).
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        keepalive.abort();
        drop(workers);
        // The `token.served` counts of the minute in progress (docs/design.md §14).
        self.state.token_served.flush_all(&self.state.store).await;
        // Connection use noted since the last flush (`last_used.rs`).
        self.state.last_used.flush(&self.state.store).await;
        served
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
