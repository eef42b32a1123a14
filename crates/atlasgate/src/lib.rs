//! atlasgate — a self-hosted broker between your applications and Atlassian Cloud.
//!
//! `main.rs` only parses the command line and calls [`cli::run`]; everything
//! is reachable from tests through this library. See `ARCHITECTURE.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod apps;
pub mod atlassian;
pub mod cli;
pub mod config;
pub mod confluence;
pub mod connect;
pub mod connections;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod events;
pub mod health;
pub mod jira;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod store;
pub mod sync;
pub mod vault;
pub mod webhooks;

pub use config::Config;
pub use error::ApiError;
pub use server::Application;
pub use state::AppState;
