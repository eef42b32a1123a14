//! atlasgate's black-box tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod apps;
mod boundaries;
mod browser_connect;
mod callback;
mod cli;
mod client;
mod config;
mod confluence;
mod connect;
mod connections;
#[cfg(feature = "demo")]
mod demo;
mod events;
mod granular;
mod hardening;
mod helpers;
mod isolation;
mod issue_keys;
mod jira;
mod jsjira;
mod openapi;
mod outside;
mod proxy;
mod pyatlassian;
mod pyjira;
mod pyjira_workflow;
mod refresh;
mod schema_parity;
mod secrets;
mod server;
mod storage;
mod sync;
mod vault;
mod webhooks_in;
