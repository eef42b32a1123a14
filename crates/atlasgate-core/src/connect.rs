//! Connect sessions (docs/design.md §2–3): one-use links that take a person
//! through Atlassian's consent. The edge's pages run the flow; the core
//! creates sessions, so that the refresh path can hand out a reconnect link.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::ids::Owner;
use crate::store::sessions as rows;
use crate::store::{Store, StoreError};

/// How long a connect session (and each state it hands out) lives.
pub const SESSION_LIFETIME_SECS: i64 = 30 * 60;

/// A validated request for a connect session.
#[derive(Debug, Clone)]
pub struct NewConnectSession {
    pub app_id: String,
    pub owner: Owner,
    pub profile: String,
    pub return_to: Option<String>,
    pub scopes: Vec<String>,
}

/// A stored session and its link.
#[derive(Debug, Clone)]
pub struct ConnectSession {
    pub id: String,
    /// Send the person's browser here.
    pub connect_url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Store a new session and build its link.
pub async fn create_session(
    store: &Store,
    config: &Config,
    new: &NewConnectSession,
) -> Result<ConnectSession, StoreError> {
    let id = format!("cs_{}", random_hex());
    let now = crate::store::now();
    let expires_at = now + SESSION_LIFETIME_SECS;
    rows::insert(
        store.pool(),
        &rows::NewSession {
            id: &id,
            app_id: &new.app_id,
            owner: &new.owner,
            profile: &new.profile,
            scopes: &new.scopes,
            return_to: new.return_to.as_deref(),
            created_at: now,
            expires_at,
        },
    )
    .await?;
    Ok(ConnectSession {
        connect_url: config.public_link(&format!("/connect/{id}")),
        id,
        expires_at,
    })
}

/// 32 random bytes, hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}
