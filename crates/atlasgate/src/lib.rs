//! atlasgate — a self-hosted broker between your applications and Atlassian Cloud.
//!
//! `main.rs` only parses the command line and calls [`cli::run`]; everything
//! is reachable from tests through this library. See `ARCHITECTURE.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod apps;
pub mod cli;
pub mod client_addr;
pub mod confluence;
pub mod connect;
pub mod connections;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod events;
pub mod health;
pub mod jira;
pub mod logging;
pub mod mcp;
pub mod openapi;
pub mod owners;
pub mod pages;
pub mod proxy;
pub mod ratelimit;
pub mod request;
pub mod schema;
pub mod server;
pub mod state;
pub mod sync;
pub mod webhooks;

// The core's modules under their old paths, so `crate::store::…` reads the same
// in the edge as in the core.
pub use atlasgate_core::{atlassian, audit, config, ids, jobs, metrics, retention, store, vault};

pub use config::Config;
pub use error::ApiError;
pub use server::Application;
pub use state::AppState;
