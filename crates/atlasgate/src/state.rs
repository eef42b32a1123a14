//! What every handler shares: the core's handles plus the edge's own caches.

use std::sync::Arc;

use atlasgate_core::config::Config;
use atlasgate_core::store::Store;
use atlasgate_core::Core;

/// Cheap to clone: every field is a handle. Derefs to [`Core`], so handlers
/// read `state.store`, `state.config`, … directly.
#[derive(Clone, Debug)]
pub struct AppState {
    pub core: Core,
    /// Recently authenticated app keys (see [`crate::apps::AppKeyCache`]).
    pub apps_cache: Arc<crate::apps::AppKeyCache>,
    /// The MCP server's per-issue write pacing (`atlasgate_core::mcp::pacing`).
    pub mcp_pacer: Arc<atlasgate_core::mcp::pacing::IssueWritePacer>,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Result<AppState, reqwest::Error> {
        Ok(AppState {
            core: Core::new(config, store)?,
            apps_cache: Arc::new(crate::apps::AppKeyCache::default()),
            mcp_pacer: Arc::default(),
        })
    }
}

impl std::ops::Deref for AppState {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}
