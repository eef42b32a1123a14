//! atlassim — a faithful Atlassian Cloud emulator.
//!
//! Start one in-process with [`Sim::start`]; run one from the shell with
//! `atlassim serve`. One port serves the auth server (`auth.atlassian.com`),
//! the API gateway (`api.atlassian.com`) and the control plane (`/__sim/`).
//! See `crates/atlassim/README.md`.

pub mod agile;
pub mod auth;
pub mod config;
pub mod confluence;
pub mod control;
pub mod errors;
pub mod faults;
pub mod gateway;
pub mod jira;
pub mod jql;
pub mod model;
pub mod quota;
pub mod ratelimit;
pub mod scopes;
pub mod seed;
pub mod sim_issues;
pub mod stats;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::{ConsentDecision, MintTokenRequest, MintedTokens};
pub use config::SimConfig;
pub use faults::Fault;
pub use stats::SimStats;

use model::{AppState, SimState};

/// The full router: auth server, control plane and gateway, under the fault
/// and request-counting layers.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(auth::router())
        .merge(control::router())
        .merge(gateway::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::apply_faults,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            stats::count_requests,
        ))
        .with_state(state)
}

/// Build the shared state: seed the world from `config`.
pub fn build_state(config: SimConfig) -> AppState {
    let clock = model::SimClock::default();
    let world = seed::seed_world(&config, clock.now());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    Arc::new(SimState {
        config,
        clock,
        world: Mutex::new(world),
        http,
        faults: faults::FaultSet::default(),
    })
}

/// A running simulator.
pub struct Sim {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Sim {
    /// Bind `config.listen` (port 0 picks a free port), seed, and serve in a
    /// background task.
    pub async fn start(config: SimConfig) -> anyhow::Result<Sim> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = build_state(config);
        let router = app(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<faults::ConnHandle>();
        let task = tokio::spawn(async move {
            let server = axum::serve(faults::SimListener::new(listener), service)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "atlassim server stopped");
            }
        });
        tracing::info!(%addr, "atlassim listening");
        Ok(Sim {
            addr,
            state,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stands in for `https://auth.atlassian.com`.
    pub fn auth_url(&self) -> String {
        self.base_url()
    }

    /// Stands in for `https://api.atlassian.com`.
    pub fn api_url(&self) -> String {
        self.base_url()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state.clock.now()
    }

    /// Move the simulated clock forward (expiry tests); returns the new now.
    pub fn advance_clock(&self, seconds: i64) -> DateTime<Utc> {
        self.state.clock.advance(seconds)
    }

    /// The decision the next `/authorize` takes without showing the page.
    pub fn set_next_consent(&self, decision: ConsentDecision) {
        self.state.world().auth.next_consent = Some(decision);
    }

    /// Hide a project from one account (`POST /__sim/projects/hide`);
    /// `false` when the site or project is unknown.
    pub fn hide_project(&self, req: &control::HideProjectRequest) -> bool {
        control::hide_project(&self.state, req)
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Revoke every grant and token family of a user.
    pub fn revoke_grants(&self, account_id: &str) {
        self.state.world().auth.revoke_account(account_id);
    }

    /// Register one more redirect URI for a client (no-op for an unknown client).
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) {
        let _ = control::add_redirect_uri(&self.state, client_id, uri);
    }

    /// Mint a token family as `POST /__sim/tokens` does.
    ///
    /// # Panics
    /// On an unknown client, user, scope or site: a test asked for the impossible.
    #[allow(clippy::panic)]
    pub fn mint_token(&self, req: MintTokenRequest) -> MintedTokens {
        match auth::mint(&self.state, req) {
            Ok(tokens) => tokens,
            Err(e) => panic!("Sim::mint_token: {e}"),
        }
    }

    pub fn stats(&self) -> SimStats {
        SimStats::from_stats(&self.state.world().stats)
    }

    /// The JSON of `GET /__sim/state`.
    pub fn snapshot(&self) -> serde_json::Value {
        control::snapshot_json(&self.state)
    }

    /// Stop serving. Open connections get a moment to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(3), &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
