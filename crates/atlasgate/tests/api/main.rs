//! atlasgate's black-box tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod apps;
mod browser_connect;
mod callback;
mod cli;
mod config;
mod connect;
mod connections;
mod demo;
mod helpers;
mod isolation;
mod openapi;
mod refresh;
mod secrets;
mod server;
mod storage;
mod vault;
