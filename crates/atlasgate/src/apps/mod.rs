//! Apps at the edge: the `AuthenticatedApp` extractor and its key cache. The
//! apps themselves (keys, secrets, return origins) are
//! [`atlasgate_core::apps`].

mod auth;
mod connection;

pub use atlasgate_core::apps::*;
pub use auth::{bearer as auth_bearer, AppKeyCache, AuthenticatedApp};
pub use connection::{AppConnection, CachedToken, Stored};
