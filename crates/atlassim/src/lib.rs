//! atlassim — a faithful Atlassian Cloud emulator.
//!
//! Start one in-process with [`Sim::start`]; run one from the shell with
//! `atlassim serve`. See `ARCHITECTURE.md` at the repository root.

pub mod config;
pub mod model;
pub mod scopes;

pub use config::SimConfig;
