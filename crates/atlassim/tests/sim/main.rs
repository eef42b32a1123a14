//! atlassim's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod auth;
mod browser;
mod control;
mod seed;

mod agile;
mod agile_writes;
mod breadth;
mod confluence;
mod confluence_adf;
mod confluence_write;
mod jira;
mod jql;
mod quota;
mod ratelimit;
mod search_cache;
mod spec;
mod webhooks;

// simjira
mod changelog;
mod comments;
mod hygiene;
mod transitions;
mod users;
