//! atlassim's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod auth;
mod browser;
mod control;
mod seed;

mod agile;
mod confluence;
mod confluence_write;
mod jira;
mod jql;
mod quota;
mod ratelimit;
mod spec;
mod webhooks;
