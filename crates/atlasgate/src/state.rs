//! What every handler shares: the core's handles plus the edge's own caches.

use std::sync::Arc;

use atlasgate_core::config::Config;
use atlasgate_core::store::Store;
use atlasgate_core::Core;

/// One `Arc`: axum clones the state for every extractor that takes it and
/// for each layer, and a clone of [`Core`] itself is a dozen reference
/// counts (≈ 860 instructions a `/token` call went to dropping them;
/// BENCHMARKS.md). Derefs to [`Shared`] and on to [`Core`], so handlers
/// read `state.store`, `state.config`, `state.apps_cache`, … directly.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// What an [`AppState`] points at.
#[derive(Debug)]
pub struct Shared {
    pub core: Core,
    /// Recently authenticated app keys (see [`crate::apps::AppKeyCache`]).
    pub apps_cache: crate::apps::AppKeyCache,
    /// The MCP server's per-issue write pacing (`atlasgate_core::mcp::pacing`).
    pub mcp_pacer: atlasgate_core::mcp::pacing::IssueWritePacer,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Result<AppState, reqwest::Error> {
        Ok(AppState(Arc::new(Shared {
            core: Core::new(config, store)?,
            apps_cache: crate::apps::AppKeyCache::default(),
            mcp_pacer: Default::default(),
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}
