//! The handles every part of the core shares (the edge's `AppState` wraps one).

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::vault::refresh::Refresher;
use crate::vault::Cipher;

/// Cheap to clone: every field is a handle.
#[derive(Clone, Debug)]
pub struct Core {
    pub config: Arc<Config>,
    pub store: Store,
    pub cipher: Arc<Cipher>,
    /// Outgoing HTTP (Atlassian, app webhooks).
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// Single-flight token refresh (docs/design.md §4).
    pub refresher: Arc<Refresher>,
    /// The polite Atlassian REST client (docs/design.md §5): proxy, typed ops, sync.
    pub atlassian: Arc<crate::atlassian::AtlassianClient>,
    /// Background jobs: sync passes, Jira webhook inbox, event deliveries.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// `token.served` audit counts not yet written (docs/design.md §14).
    pub token_served: Arc<crate::audit::TokenServed>,
    /// `last_used_at` notes not yet written (`last_used.rs`).
    pub last_used: Arc<crate::last_used::LastUsed>,
}

impl Core {
    pub fn new(config: Config, store: Store) -> Result<Core, reqwest::Error> {
        let config = Arc::new(config);
        let cipher = Arc::new(Cipher::new(config.encryption_keys.clone()));
        let http = reqwest::Client::builder()
            .user_agent(concat!("atlasgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let metrics = Arc::new(Metrics::new());
        let oauth = crate::atlassian::OAuthClient::new(
            http.clone(),
            config.auth_url.clone(),
            config.api_url.clone(),
            config.client_id.clone(),
            config.client_secret.clone(),
        );
        let refresher = Arc::new(Refresher::new(
            store.clone(),
            cipher.clone(),
            oauth,
            config.refresh_margin,
            metrics.clone(),
            config.clone(),
        ));
        let atlassian = Arc::new(crate::atlassian::AtlassianClient::new(
            http.clone(),
            &config.api_url,
            refresher.clone(),
        ));
        atlassian.budget().configure(config.points);
        atlassian.budget().set_metrics(metrics.clone());
        atlassian.set_policy(crate::atlassian::ClientPolicy {
            pacing: config.pacing,
            ..crate::atlassian::ClientPolicy::default()
        });
        Ok(Core {
            jobs: Arc::new(crate::jobs::Jobs::default()),
            token_served: Arc::new(crate::audit::TokenServed::default()),
            last_used: Arc::new(crate::last_used::LastUsed::default()),
            atlassian,
            config,
            store,
            cipher,
            http,
            metrics,
            refresher,
        })
    }
}
