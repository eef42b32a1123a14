//! atlasgate's core: everything the broker does that is not HTTP serving.
//!
//! Storage (`store/`, the only place SQL is written), the vault (encryption,
//! keys, the refresh engine), the Atlassian client layer, the sync engine,
//! Jira webhook ingest, the event outbox, and one [`Error`]. It depends on no
//! HTTP-server crate; the `atlasgate` crate is the edge that translates
//! requests into calls here and [`Error`] into HTTP answers. See
//! `ARCHITECTURE.md`.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod adf;
pub mod apps;
pub mod atlassian;
pub mod audit;
pub mod config;
pub mod confluence;
pub mod connect;
pub mod connections;
pub mod error;
pub mod events;
pub mod ids;
pub mod import;
pub mod jira;
pub mod jobs;
pub mod last_used;
pub mod mcp;
pub mod metrics;
pub mod retention;
pub mod state;
pub mod store;
pub mod sync;
pub mod time;
pub mod vault;
pub mod webhooks;
pub mod workers;

pub use config::Config;
pub use error::{Error, Result};
pub use ids::{CloudId, ConnectionId, Jql, Owner};
pub use state::Core;
